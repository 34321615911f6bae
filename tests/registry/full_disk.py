"""A disk that really fills: a small tmpfs when we may mount one, else a file-size limit.

Both make LMDB's own writes fail the way a full disk does (a short write that LMDB reports
as EIO, or ENOSPC/EFBIG), so the tests exercise the real commit path.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import metrics
from proto import handle_pb2
from registry import accounts, verify
from registry.errors import StoreError
from registry.registry import Registry
from registry.store import Store, StoreOptions
from registry.writebatch import WriteBatch
from tests.registry import groups

METHODS = ["tmpfs", "file-size-limit"]
ADMIN_TOKEN = "admin-token-for-full-disk-tests"


@contextlib.contextmanager
def tmpfs(mount_point: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` at `mount_point` (root only; skips the test otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def limit_file_size(size_bytes: int) -> Callable[[], None]:
    """A preexec_fn: files the process writes stop growing at `size_bytes` (SIGXFSZ ignored,
    so the write fails the way a full disk makes it fail instead of killing the process).
    The hard limit stays, so the process can raise the soft one again."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, hard))

    return apply


def ballast(directory: Path, size_bytes: int) -> Path:
    """A file that takes up `size_bytes` of `directory`'s disk; deleting it frees the disk."""
    path = directory / "ballast"
    with open(path, "wb") as handle:
        handle.write(b"\0" * size_bytes)
    return path


def fill_up(directory: Path) -> None:
    """Take every free block of `directory`'s disk."""
    with open(directory / "filler", "ab", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 4096)


def fill_until_full(data_dir: str, file_size_limit: int, ballast_path: str, report: Any) -> None:
    """Spawned: register batches until the disk is full, keep trying, free the disk, write
    again; put what happened on `report` (a queue) for the test to judge."""
    if file_size_limit:
        limit_file_size(file_size_limit)()
    refusals = _Refusals()
    logging.getLogger("registry.store").addHandler(refusals)
    store = Store(data_dir, StoreOptions(map_size_bytes=64 << 20))
    try:
        registry = Registry(store, "88.118")
        registry.ensure_node_prefix()
        accounts.ensure_admin(store, ADMIN_TOKEN)
        admin = accounts.authenticate(store, ADMIN_TOKEN)
        registry.create_enterprise(admin, code="8")
        stored: list[str] = []
        errors: list[str] = []
        for batch in range(2000):
            names = [f"88.118.8/b{batch}-{n}" for n in range(20)]
            try:
                registry.batch_register(admin, [_record(name) for name in names])
            except StoreError as error:
                errors.append(f"{type(error).__name__}: {error}")
                if len(errors) == 5:
                    break
                continue
            stored.extend(names)
        with store.read() as txn:
            readable = sum(store.get_record(txn, name) is not None for name in stored)
        if file_size_limit:
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        else:
            os.unlink(ballast_path)
        registry.batch_register(admin, [_record("88.118.8/after")])
        registry.batch_register(admin, [_record("88.118.8/after-2")])
        report.put(
            {
                "stored": len(stored),
                "readable": readable,
                "errors": errors,
                "logged": refusals.messages,
                "counted": metrics.STORE_OUT_OF_SPACE._value.get(),
                "verify_problems": verify.verify(store).problems,
            }
        )
    finally:
        store.close()


def group_on_full_disk(data_dir: str, file_size_limit: int, report: Any) -> None:
    """Spawned: fill the disk, commit a group of writes, make room, commit the group again;
    put what happened on `report` for the test to judge."""
    limit_file_size(file_size_limit)()
    store = Store(data_dir, StoreOptions(map_size_bytes=64 << 20))
    try:
        filled = _fill(store, 20, 2000)
        keys = [f"88.118/group{n}" for n in range(8)]
        with store.read():  # LMDB reuses no page freed after this: every write must grow
            filled += _fill(store, 1, 1)  # what free pages are left, small writes take
            full = groups.one_group(store, [groups.put(k, os.urandom(500)) for k in keys], keys)
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        room = groups.one_group(store, [groups.put(k, os.urandom(500)) for k in keys], keys)
        with store.read() as txn:
            readable = sum(store.get_record(txn, key) is not None for key in keys)
        report.put(
            {
                "filled": filled,
                "full_errors": sorted(type(e).__name__ for e in full.errors.values()),
                "full_committed": sorted(full.committed_on_return.values()),
                "room_errors": [repr(e) for e in room.errors.values()],
                "room_committed": sorted(room.committed_on_return.values()),
                "readable": readable,
                "verify_problems": verify.verify(store).problems,
            }
        )
    finally:
        store.close()


def _fill(store: Store, records: int, data_bytes: int) -> int:
    """Write `records` records a commit until a commit fails; returns how many committed."""
    for commits in itertools.count():
        keys = [f"88.118/fill{data_bytes}-{commits}-{n}" for n in range(records)]

        def work(batch: WriteBatch, keys: list[str] = keys) -> None:
            for key in keys:
                groups.put(key, os.urandom(data_bytes))(batch)

        try:
            store.write(work)
        except StoreError:
            return commits
    raise AssertionError("unreachable")


class _Refusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname} {record.getMessage()}")


def _record(identifier: str) -> handle_pb2.Record:
    value = handle_pb2.HandleValue(index=1, type="URL", data=os.urandom(500).hex().encode())
    return handle_pb2.Record(identifier=identifier, values=[value])
