"""The node's SM2 key: made on the first start, kept in the data dir, published as HS_PUBKEY.

The private key is DATA_DIR/sm2-key.pem (PKCS#8 PEM, 0600; back it up with the data dir:
a node that loses it signs with a new one, and proofs made before verify only under the
old key). Its public key is the HS_PUBKEY value of the node's prefix record,
0.NA/<node prefix>, which the node answers like any record of its own (Handle's place
for a prefix's keys), and which syncs upward with the change log.
"""

from __future__ import annotations

import os
from typing import Any

from proto import handle_pb2
from registry import managed
from registry.crypto import sm2
from registry.store import Store

KEY_FILE = "sm2-key.pem"
PREFIX_HANDLE = "0.NA/"
KEY_TYPE = "HS_PUBKEY"
KEY_INDEX = 300  # where Handle puts a prefix's HS_PUBKEY


class PublishedKeyInvalid(sm2.SM2Error):
    """The node's prefix record carries an HS_PUBKEY value that is not an SM2 key."""


def key_path(data_dir: str) -> str:
    return os.path.join(data_dir, KEY_FILE)


def prefix_handle(node_prefix: str) -> str:
    """The identifier of the node's prefix record (canonical: the prefix lower-cased)."""
    return PREFIX_HANDLE.lower() + node_prefix.lower()


def ensure(store: Store, node_prefix: str) -> tuple[sm2.PrivateKey, bool]:
    """The node's key, made now when the data dir has none, and its public key published
    on the node's prefix record; also whether the key was made. Raises SM2Error."""
    key, made = sm2.ensure_key_file(key_path(store.path))
    published = key.public_key.pem()
    handle = prefix_handle(node_prefix)
    with store.read() as txn:
        record = store.get_record(txn, handle)
    current = {v.index: v.data for v in record.values} if record is not None else {}
    if current.get(KEY_INDEX) != published:
        value = handle_pb2.HandleValue(index=KEY_INDEX, type=KEY_TYPE, data=published)
        managed.put_values(store, handle, [value])
    return key, made


def load(data_dir: str) -> sm2.PrivateKey:
    """The node's key (made by `ensure` at the first start). Raises SM2Error."""
    return sm2.read_key_file(key_path(data_dir))


def published_key(store: Store, txn: Any) -> tuple[sm2.PublicKey | None, str]:
    """The public key on the prefix record of the node whose store this is, and where it
    was found (or why there is none). Raises PublishedKeyInvalid for a value that is not
    an SM2 key."""
    prefix = store.get_meta(txn, "node_prefix")
    if prefix is None:
        return None, "the store names no node prefix"
    handle = prefix_handle(prefix.decode())
    record = store.get_record(txn, handle)
    for value in record.values if record is not None else ():
        if value.type.upper() == KEY_TYPE:
            where = f"{KEY_TYPE} of {handle}"
            try:
                return sm2.PublicKey.from_text(value.data), where
            except sm2.SM2Error as error:
                raise PublishedKeyInvalid(f"{where} is not an SM2 key") from error
    return None, f"no {KEY_TYPE} value on {handle}"
