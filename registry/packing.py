"""Records as stored under `records`: protobuf, deflated when that saves LMDB pages.

LMDB keeps a value in its B-tree leaf while the node fits in half a page; a larger one
takes whole overflow pages of its own, so a record of 2.1 KB occupies 4 KB. Such a record
is stored deflated when that needs fewer pages (text and URLs shrink to about 40 %), and
as plain protobuf otherwise: small records, and every record on the resolve path that
fits a leaf, are read without any extra step.
"""

from __future__ import annotations

import zlib

from google.protobuf.message import DecodeError

from proto import handle_pb2

_IDENTIFIER_TAG = b"\x0a"  # Record.identifier: field 1, length-delimited
DEFLATED = b"\x00"  # no stored record starts with a zero byte: protobuf has no field 0
LEVEL = 1  # of 9: about 35 µs per 2 KB here, and within 4 % of level 9's size
_PAGE_HEADER_BYTES = 16
_NODE_HEADER_BYTES = 8


def encode(record: handle_pb2.Record, key_bytes: int, page_bytes: int) -> bytes:
    """`record` as it is stored under a key of `key_bytes` in pages of `page_bytes`."""
    return pack(record.SerializeToString(), key_bytes, page_bytes)


def pack(plain: bytes, key_bytes: int, page_bytes: int) -> bytes:
    """A serialised record as it is stored (`encode` for a record serialised already)."""
    if _in_leaf(len(plain), key_bytes, page_bytes):
        return plain
    packed = DEFLATED + zlib.compress(plain, LEVEL)
    if _pages(len(packed), key_bytes, page_bytes) < _pages(len(plain), key_bytes, page_bytes):
        return packed
    return plain


def without_identifier(serialised: bytes) -> bytes:
    """A serialised Record without its identifier (field 1, which serialisation puts
    first): what `encode` stores, from a record that still names its identifier."""
    if serialised[:1] != _IDENTIFIER_TAG:
        return serialised
    length = shift = 0
    offset = 1
    while True:  # the identifier's length, a varint
        byte = serialised[offset]
        length |= (byte & 0x7F) << shift
        offset += 1
        if byte < 0x80:
            return serialised[offset + length :]
        shift += 7


def decode(raw: bytes) -> handle_pb2.Record:
    """The record stored as `raw`. Raises DecodeError when it does not parse."""
    return handle_pb2.Record.FromString(plain(raw))


def plain(raw: bytes) -> bytes:
    """The serialised record stored as `raw`. Raises DecodeError for a damaged deflate."""
    if raw[:1] != DEFLATED:
        return raw
    try:
        return zlib.decompress(raw[1:])
    except zlib.error as error:
        raise DecodeError(f"a deflated record does not inflate: {error}") from error


def _in_leaf(value_bytes: int, key_bytes: int, page_bytes: int) -> bool:
    node_max = (((page_bytes - _PAGE_HEADER_BYTES) // 2) & ~1) - 2  # LMDB's me_nodemax
    return _NODE_HEADER_BYTES + key_bytes + value_bytes <= node_max


def _pages(value_bytes: int, key_bytes: int, page_bytes: int) -> float:
    """Pages a value takes: a share of a leaf page, or its whole overflow pages."""
    if _in_leaf(value_bytes, key_bytes, page_bytes):
        return (_NODE_HEADER_BYTES + key_bytes + value_bytes) / page_bytes
    return float(-(-(value_bytes + _PAGE_HEADER_BYTES) // page_bytes))
