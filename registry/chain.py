"""The change log's SM3 hash chain, checkpoint Merkle trees and signatures, and their proofs.

Every change-log entry n has a chain hash h(n) = SM3(h(n-1) || bytes(n)), h(0) being 32
zero bytes, where bytes(n) is the entry in its canonical form (`entry_bytes`) whatever
form the store keeps it in. A checkpoint covers the entries first..last (at most
MAX_RANGE_ENTRIES): it states h(first-1), h(last) and the root of a Merkle tree over
h(first)..h(last) (RFC 9162's tree, with SM3), and the node signs those fields with SM2.
A proof for one entry is the entry, h(n-1), its Merkle audit path and the checkpoint:
bounded in size whatever the log's length (docs/security.md).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proto import handle_pb2
from registry.changelog import field, varint
from registry.crypto import sm2, sm3

GENESIS = bytes(sm3.DIGEST_BYTES)  # h(0): the hash before the first entry
MAX_RANGE_ENTRIES = 1024  # entries per checkpoint: audit paths of at most 10 hashes
MAX_PATH_HASHES = 64
SIGNED_MAGIC = b"IDNODE-CHECKPOINT-1"
_SIGNED = struct.Struct(">QQ32s32s32sq")
_LEAF = b"\x00"
_NODE = b"\x01"
_WITH_RECORD = (handle_pb2.ChangeEntry.CREATE, handle_pb2.ChangeEntry.UPDATE)


class ChainError(ValueError):
    """A chain, checkpoint or proof that does not hold; the message says where and why."""


def entry_bytes(entry: handle_pb2.ChangeEntry) -> bytes:
    """The canonical bytes of `entry`: the entry serialised without its record, then (for
    CREATE and UPDATE) the record as field 4, carrying the entry's identifier. This is
    the form the store keeps a superseded entry in, so most entries hash as stored."""
    head = handle_pb2.ChangeEntry()
    head.CopyFrom(entry)
    head.ClearField("record")
    raw = head.SerializeToString(deterministic=True)
    if entry.operation not in _WITH_RECORD:
        return raw
    record = handle_pb2.Record(identifier=entry.identifier)
    record.values.extend(entry.record.values)
    return raw + field(4, record.SerializeToString(deterministic=True))


def with_record(head: bytes, identifier: bytes, plain_values: bytes) -> bytes:
    """`entry_bytes` from parts: an entry serialised without its record, and the record's
    values as stored under `records` (registry.packing.plain). Once per entry the signer
    chains: `field` spelt out, with the lengths' varints of one or two bytes
    made without a loop."""
    named = b"\x0a" + _short_varint(len(identifier)) + identifier  # Record field 1
    inner = len(named) + len(plain_values)
    return b"".join((head, b"\x22", _short_varint(inner), named, plain_values))  # field 4


_ONE_BYTE = [bytes([n]) for n in range(0x80)]


def _short_varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    return varint(value)


def link(previous: bytes, canonical: bytes) -> bytes:
    """h(n) from h(n-1) and bytes(n)."""
    return sm3.digest(previous + canonical)


def advance(previous: bytes, entries: Iterable[handle_pb2.ChangeEntry]) -> list[bytes]:
    """The chain hashes of `entries` (consecutive) after `previous`."""
    hashes = []
    for entry in entries:
        previous = link(previous, entry_bytes(entry))
        hashes.append(previous)
    return hashes


# Merkle trees (RFC 9162, section 2.1, with SM3) ---------------------------------------


def _leaf(chain_hash: bytes) -> bytes:
    return sm3.digest(_LEAF + chain_hash)


def _node(left: bytes, right: bytes) -> bytes:
    return sm3.digest(_NODE + left + right)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaf hashes first; a level's lone last node moves up
    unchanged, which gives RFC 9162's tree for any number of leaves."""
    level = [_leaf(h) for h in leaves]
    levels = [level]
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        levels.append(level)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over chain hashes `leaves` (at least one)."""
    if not leaves:
        raise ChainError("a Merkle tree needs at least one leaf")
    return _levels(leaves)[-1][0]


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The hashes that lead from leaf `index` to the root, bottom up."""
    path = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


def root_from_path(chain_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root that leaf `index` of `size` leaves and its audit path lead to (RFC 9162,
    2.1.3.2). Raises ChainError when the path cannot belong to such a tree."""
    if not 0 <= index < size or len(path) > MAX_PATH_HASHES:
        raise ChainError(f"leaf {index} of {size}, or a path of {len(path)} hashes, is impossible")
    fn, sn, root = index, size - 1, _leaf(chain_hash)
    for sibling in path:
        if sn == 0 or len(sibling) != sm3.DIGEST_BYTES:
            raise ChainError("the audit path is longer than the tree is high")
        if fn & 1 or fn == sn:
            root = _node(sibling, root)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = _node(root, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ChainError("the audit path is shorter than the tree is high")
    return root


# Checkpoints ---------------------------------------------------------------------------


def signed_bytes(checkpoint: handle_pb2.Checkpoint) -> bytes:
    """What the node's signature covers: a fixed layout of the checkpoint's fields."""
    log_id = checkpoint.log_id.encode("ascii", "replace")[:255]
    return (
        SIGNED_MAGIC
        + bytes([len(log_id)])
        + log_id
        + _SIGNED.pack(
            checkpoint.first_sequence,
            checkpoint.last_sequence,
            checkpoint.previous_hash,
            checkpoint.head_hash,
            checkpoint.merkle_root,
            checkpoint.signed_ns,
        )
    )


def make_checkpoint(
    log_id: str,
    first: int,
    previous: bytes,
    leaves: Sequence[bytes],
    key: sm2.PrivateKey,
    signed_ns: int,
) -> handle_pb2.Checkpoint:
    """Sign the range of chain hashes `leaves`, the first being entry `first`'s."""
    if not 0 < len(leaves) <= MAX_RANGE_ENTRIES:
        raise ChainError(f"a checkpoint covers 1 to {MAX_RANGE_ENTRIES} entries")
    checkpoint = handle_pb2.Checkpoint(
        log_id=log_id,
        first_sequence=first,
        last_sequence=first + len(leaves) - 1,
        previous_hash=previous,
        head_hash=leaves[-1],
        merkle_root=merkle_root(leaves),
        signed_ns=signed_ns,
    )
    checkpoint.signature = key.sign(signed_bytes(checkpoint))
    return checkpoint


def check_checkpoint(checkpoint: handle_pb2.Checkpoint, key: sm2.PublicKey) -> None:
    """Raises ChainError unless `checkpoint` is well formed and signed by `key`."""
    first, last = checkpoint.first_sequence, checkpoint.last_sequence
    if not 0 < first <= last or last - first >= MAX_RANGE_ENTRIES:
        raise ChainError(f"checkpoint range {first}..{last} is impossible")
    for name in ("previous_hash", "head_hash", "merkle_root"):
        if len(getattr(checkpoint, name)) != sm3.DIGEST_BYTES:
            raise ChainError(f"checkpoint {first}..{last}: {name} is not {sm3.DIGEST_BYTES} bytes")
    if not key.verify(signed_bytes(checkpoint), checkpoint.signature):
        raise ChainError(f"checkpoint {first}..{last}: the signature does not verify")


# Proofs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """What a proof established."""

    sequence: int
    chain_hash: bytes
    checkpoint: handle_pb2.Checkpoint


def make_proof(
    entry: handle_pb2.ChangeEntry,
    previous: bytes,
    leaves: Sequence[bytes],
    checkpoint: handle_pb2.Checkpoint,
) -> handle_pb2.ChainProof:
    """The proof of `entry` under `checkpoint`, whose range's chain hashes are `leaves`."""
    proof = handle_pb2.ChainProof(previous_hash=previous)
    proof.entry.CopyFrom(entry)
    proof.path.extend(audit_path(leaves, entry.sequence - checkpoint.first_sequence))
    proof.checkpoint.CopyFrom(checkpoint)
    return proof


def verify_proof(proof: handle_pb2.ChainProof, key: sm2.PublicKey) -> Verified:
    """Check that `proof.entry` is the entry the holder of `key` signed at its sequence.
    Raises ChainError naming the step that failed."""
    checkpoint = proof.checkpoint
    check_checkpoint(checkpoint, key)
    sequence = proof.entry.sequence
    first, last = checkpoint.first_sequence, checkpoint.last_sequence
    if not first <= sequence <= last:
        raise ChainError(f"change {sequence} is outside the checkpoint's range {first}..{last}")
    if len(proof.previous_hash) != sm3.DIGEST_BYTES:
        raise ChainError("the previous chain hash is not 32 bytes")
    if sequence == first and proof.previous_hash != checkpoint.previous_hash:
        raise ChainError("the previous chain hash differs from the checkpoint's")
    chain_hash = link(proof.previous_hash, entry_bytes(proof.entry))
    root = root_from_path(chain_hash, sequence - first, last - first + 1, proof.path)
    if root != checkpoint.merkle_root:
        raise ChainError(
            f"change {sequence} is not the entry the checkpoint {first}..{last} signed"
        )
    return Verified(sequence, chain_hash, checkpoint)
