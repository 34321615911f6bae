"""Upgrading an older data dir in place: a backup first, then each step to the current schema.

The first writable open of an older store (the node's first start with a new build)
copies the store to DATA_DIR/backup-schema-<version>-<UTC time>/ (a compacted LMDB copy
that `idnode restore` or the older build can use), notes in the store that the upgrade
has begun, and runs the steps. An upgrade cut short (killed, disk full) resumes at the
next open without another backup. Steps that only mean more (1 -> 2 -> 3) change the
version number; 3 -> 4 chains every change-log entry kept (registry.chainlog), in
transactions of UPGRADE_CHUNK_ENTRIES.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from registry import chain, chainlog
from registry.errors import IdnodeError, StoreError

if TYPE_CHECKING:
    from registry.store import Store

log = logging.getLogger("registry.upgrade")

BACKUP_PREFIX = "backup-schema-"
UPGRADING_KEY = "upgrading"  # meta: the version an upgrade started from (its backup exists)


def run(store: Store, found: bytes, steps: Mapping[bytes, bytes]) -> None:
    """Bring `store` from schema `found` to the last of `steps`. Raises StoreError when
    the backup cannot be made (nothing is changed then)."""
    with store.read() as txn:
        begun = store.get_meta(txn, UPGRADING_KEY)
    if begun is None:
        backup = make_backup(store, found)
        log.warning(
            "upgrading the data dir's schema in place; its backup is made",
            extra={"data_dir": store.path, "from": found.decode(), "backup": backup},
        )
        store.write(lambda batch: batch.put_meta(UPGRADING_KEY, found))
    version = found
    started = time.monotonic()
    while version in steps:
        following = steps[version]
        _WORK.get(version, _nothing)(store)
        _set_schema(store, following)
        version = following
    store.write(lambda batch: batch.txn.delete(UPGRADING_KEY.encode(), db=store.meta))
    log.warning(
        "data dir upgraded",
        extra={
            "data_dir": store.path,
            "from": found.decode(),
            "to": version.decode(),
            "seconds": round(time.monotonic() - started, 3),
        },
    )


def _set_schema(store: Store, version: bytes) -> None:
    store.write(lambda batch: batch.put_meta("schema", version))


def make_backup(store: Store, version: bytes) -> str:
    """A compacted copy of the store in the data dir, named with its schema version."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = os.path.join(store.path, f"{BACKUP_PREFIX}{version.decode()}-{stamp}")
    try:
        store.copy_to(dest)
    except (IdnodeError, OSError) as error:
        raise StoreError(
            f"data dir {store.path}: cannot back it up before upgrading its schema from "
            f"{version.decode()} ({error}); nothing was changed: free space and start again"
        ) from error
    return dest


def _nothing(store: Store) -> None:
    del store


def _chain_the_log(store: Store) -> None:
    """3 -> 4: every entry kept gets its chain hash; the chain starts at the oldest entry
    kept, after the genesis hash (what came before was trimmed, unchained)."""
    store.create_chain_dbs()
    with store.read() as txn:
        replica = chainlog.is_copy(txn, store)
    if replica:  # its log starts after a snapshot: its next copy brings the chain
        store.write(lambda batch: batch.put_meta(chainlog.STATE_KEY.decode(), chainlog.RECOPY))
        return
    with store.read() as txn:
        first = store.first_sequence(txn)
        last = store.last_sequence(txn)
        has_origin = txn.get(chainlog.ORIGIN_KEY, db=store.meta) is not None
    if not has_origin:
        store.write(lambda batch: chainlog.put_origin(batch.txn, store, first, chain.GENESIS))
    done = _chained_up_to(store, first - 1)
    while done < last:
        done = _chain_some(store, done)


def _chain_some(store: Store, after: int) -> int:
    return store.write(
        lambda batch: chainlog.build(batch.txn, store, after, chainlog.UPGRADE_CHUNK_ENTRIES)
    )


def _chained_up_to(store: Store, default: int) -> int:
    with store.read() as txn, txn.cursor(db=store.chain) as cursor:
        return int.from_bytes(cursor.key(), "big") if cursor.last() else default


_WORK: dict[bytes, Callable[[Store], None]] = {b"3": _chain_the_log}
