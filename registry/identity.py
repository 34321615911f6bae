"""A node's durable identity: made once with its store, kept in the store's meta."""

from __future__ import annotations

import re
import secrets

from registry.errors import InvalidRequest
from registry.store import Store, WriteBatch

NODE_ID_KEY = "node_id"
NODE_ID_HEX_CHARS = 32
_NODE_ID = re.compile(r"[0-9a-f]{32}")


def node_id(store: Store) -> str | None:
    """This store's identity, None when it has none yet."""
    with store.read() as txn:
        found = store.get_meta(txn, NODE_ID_KEY)
    return found.decode() if found is not None else None


def ensure_node_id(store: Store) -> str:
    """The store's identity, made now when it has none (a new store, or one made before
    identities existed). Idempotent: every later call returns the same identity."""
    found = node_id(store)
    if found is not None:
        return found

    def work(batch: WriteBatch) -> str:
        existing = batch.get_meta(NODE_ID_KEY)
        if existing is not None:
            return existing.decode()
        made = secrets.token_hex(NODE_ID_HEX_CHARS // 2)
        batch.put_meta(NODE_ID_KEY, made.encode())
        return made

    return store.write(work)


def check_node_id(text: str) -> str:
    """`text` when it is a well-formed identity ("" allowed: none). Raises InvalidRequest."""
    if text and not _NODE_ID.fullmatch(text):
        raise InvalidRequest(f"node identity {text[:40]!r} is not {NODE_ID_HEX_CHARS} hex digits")
    return text
