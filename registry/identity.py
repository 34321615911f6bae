"""A node's durable identities, made once with its store and kept in its meta: the node's
own (who syncs upward) and its change log's (whose sequences these are)."""

from __future__ import annotations

import re
import secrets

from registry.errors import InvalidRequest
from registry.store import Store
from registry.writebatch import WriteBatch

NODE_ID_KEY = "node_id"
LOG_ID_KEY = "sync_log_id"
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
    return _ensure(store, NODE_ID_KEY)


def ensure_log_id(store: Store) -> str:
    """The change log's identity: a new one tells the upstream that sequences start over."""
    return _ensure(store, LOG_ID_KEY)


def _ensure(store: Store, key: str) -> str:
    with store.read() as txn:
        found = store.get_meta(txn, key)
    if found is not None:
        return found.decode()

    def work(batch: WriteBatch) -> str:
        existing = batch.get_meta(key)
        if existing is not None:
            return existing.decode()
        made = secrets.token_hex(NODE_ID_HEX_CHARS // 2)
        batch.put_meta(key, made.encode())
        return made

    return store.write(work)


def check_node_id(text: str) -> str:
    """`text` when it is a well-formed identity ("" allowed: none). Raises InvalidRequest."""
    if text and not _NODE_ID.fullmatch(text):
        raise InvalidRequest(f"node identity {text[:40]!r} is not {NODE_ID_HEX_CHARS} hex digits")
    return text
