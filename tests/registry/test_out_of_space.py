"""A full disk under the real LMDB commit: one clear domain error, logged once, counted, no loss."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from registry.store import Store, StoreOptions
from tests.registry import full_disk

SPAWN = multiprocessing.get_context("spawn")
DISK_BYTES = 4 << 20


def run_until_full(data_dir: Path, file_size_limit: int, ballast: str) -> dict[str, Any]:
    report = SPAWN.Queue()
    process = SPAWN.Process(
        target=full_disk.fill_until_full, args=(str(data_dir), file_size_limit, ballast, report)
    )
    process.start()
    try:
        result: dict[str, Any] = report.get(timeout=120)
    finally:
        process.join(timeout=60)
    assert process.exitcode == 0
    return result


@pytest.mark.parametrize("method", full_disk.METHODS)
def test_full_disk_is_store_out_of_space_logged_once_counted_and_loses_nothing(
    tmp_path: Path, method: str
) -> None:
    if method == "tmpfs":
        with full_disk.tmpfs(tmp_path / "disk", DISK_BYTES) as disk:
            ballast = full_disk.ballast(disk, 512 << 10)
            result = run_until_full(disk / "data", 0, str(ballast))
    else:
        result = run_until_full(tmp_path / "data", DISK_BYTES, "")
    assert result["stored"] > 0
    assert result["errors"] == ["StoreOutOfSpace: store is out of disk space"] * 5
    assert result["counted"] == 5
    assert result["readable"] == result["stored"]
    assert result["verify_problems"] == []
    assert [m for m in result["logged"] if m.startswith("ERROR")] == [
        "ERROR store is out of disk space: writes fail until space is freed; reads still work"
    ]
    assert [m for m in result["logged"] if m.startswith("WARNING")] == [
        "WARNING store writes succeed again"
    ]


def test_a_group_commit_on_a_full_disk_fails_every_write_of_the_group_and_loses_nothing(
    tmp_path: Path,
) -> None:
    report = SPAWN.Queue()
    process = SPAWN.Process(
        target=full_disk.group_on_full_disk, args=(str(tmp_path / "data"), DISK_BYTES, report)
    )
    process.start()
    try:
        result: dict[str, Any] = report.get(timeout=120)
    finally:
        process.join(timeout=60)
    assert process.exitcode == 0
    assert result["filled"] > 0
    # The write held in flight, and the eight that queued behind it: one commit each time.
    assert result["full_errors"] == ["StoreOutOfSpace"] * 9
    assert result["full_committed"] == [False] * 8
    assert result["room_errors"] == []
    assert result["room_committed"] == [True] * 8
    assert result["readable"] == 8
    assert result["verify_problems"] == []


READERS_SCRIPT = """
import sys
from registry.store import Store, StoreOptions
store = Store(sys.argv[1], StoreOptions(max_readers=512))
open_transactions = [store.env.begin() for _ in range(300)]  # reader slots past the first page
print(len(open_transactions))
"""


def test_readers_on_a_full_disk_do_not_die_of_sigbus(tmp_path: Path) -> None:
    """LMDB writes reader slots through a mapping of lock.mdb, which it makes sparse: on a full
    disk the first slot on a page never written killed the process with SIGBUS."""
    with full_disk.tmpfs(tmp_path / "disk", 1 << 20) as disk:
        Store(str(disk / "data"), StoreOptions(durable=False)).close()
        full_disk.fill_up(disk)
        result = subprocess.run(
            [sys.executable, "-c", READERS_SCRIPT, str(disk / "data")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert (result.returncode, result.stdout.strip()) == (0, "300"), result.stderr
