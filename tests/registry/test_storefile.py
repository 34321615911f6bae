"""The data dir before LMDB maps it: a short data file refused, open failures named, modes private."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from registry import storefile
from registry.errors import StoreError
from registry.store import Store, StoreOptions

PAGE_BYTES = 4096


def fill(data_dir: Path, rounds: int = 5) -> None:
    """Writes and deletes in turn, so the newest pages of the file are often free ones."""
    env = lmdb.open(str(data_dir), map_size=1 << 28, max_dbs=2)
    try:
        db = env.open_db(b"x")
        for round_number in range(rounds):
            with env.begin(write=True) as txn:
                for n in range(3000):
                    txn.put(b"k%07d" % (n + round_number * 1000), os.urandom(300), db=db)
            with env.begin(write=True) as txn:
                for n in range(0, 3000, 2):
                    txn.delete(b"k%07d" % (n + round_number * 1000), db=db)
    finally:
        env.close()


def reads_everything(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Open and read every record in another process (a cut page would SIGBUS it, not us)."""
    script = (
        "import lmdb, sys\n"
        "env = lmdb.open(sys.argv[1], max_dbs=2, readonly=True, lock=False)\n"
        "db = env.open_db(b'x', create=False)\n"
        "with env.begin() as txn:\n"
        "    print(sum(len(v) for _k, v in txn.cursor(db=db)))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(data_dir)], capture_output=True, text=True, timeout=60
    )


def free_tail_pages(data_dir: Path) -> int:
    """How many of the file's last pages are free in its newest transaction."""
    original = (data_dir / storefile.DATA_FILE).read_bytes()
    probe = data_dir / "probe.mdb"
    pages = len(original) // PAGE_BYTES
    cut = 0
    while cut < pages - 2:
        probe.write_bytes(original[: (pages - cut - 1) * PAGE_BYTES])
        try:
            storefile.check_data_file(str(probe))
        except StoreError:
            break
        cut += 1
    probe.unlink()
    return cut


def test_intact_store_passes_and_a_cut_into_used_pages_is_refused(tmp_path: Path) -> None:
    fill(tmp_path)
    path = tmp_path / storefile.DATA_FILE
    storefile.check_data_file(str(path))
    size = path.stat().st_size
    os.truncate(path, size // 2)
    with pytest.raises(StoreError, match=rf"{path}: the file is {size // 2} bytes .* truncated"):
        storefile.check_data_file(str(path))
    with pytest.raises(StoreError, match="truncated"):
        Store(str(tmp_path))


def test_a_cut_of_only_free_pages_opens_and_reads_everything(tmp_path: Path) -> None:
    fill(tmp_path)
    before = reads_everything(tmp_path)
    assert before.returncode == 0, before.stderr
    free = free_tail_pages(tmp_path)
    assert free > 0  # LMDB leaves free pages at the end: the case the check must not refuse
    path = tmp_path / storefile.DATA_FILE
    os.truncate(path, path.stat().st_size - free * PAGE_BYTES)
    storefile.check_data_file(str(path))
    after = reads_everything(tmp_path)
    assert (after.returncode, after.stdout) == (0, before.stdout), after.stderr
    os.truncate(path, path.stat().st_size - PAGE_BYTES)  # one more page: a used one
    with pytest.raises(StoreError, match="truncated"):
        storefile.check_data_file(str(path))


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        (100, "shorter than LMDB's header"),
        (PAGE_BYTES + 100, "ends inside its second header page"),
    ],
)
def test_a_file_cut_inside_its_headers_is_refused(tmp_path: Path, size: int, problem: str) -> None:
    fill(tmp_path, rounds=1)
    os.truncate(tmp_path / storefile.DATA_FILE, size)
    with pytest.raises(StoreError, match=problem):
        Store(str(tmp_path))


def test_an_empty_data_file_is_a_new_store(tmp_path: Path) -> None:
    (tmp_path / storefile.DATA_FILE).write_bytes(b"")
    Store(str(tmp_path), StoreOptions(durable=False)).close()


def test_a_damaged_page_size_is_refused(tmp_path: Path) -> None:
    fill(tmp_path, rounds=1)
    with open(tmp_path / storefile.DATA_FILE, "r+b") as handle:
        handle.seek(40)  # MDB_meta.mm_psize of meta page 0
        handle.write((1000).to_bytes(4, sys.byteorder))
    with pytest.raises(StoreError, match="impossible page size 1000"):
        Store(str(tmp_path))


def test_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("x")
    with pytest.raises(StoreError, match=rf"^data dir {not_a_dir} is not a directory$"):
        Store(str(not_a_dir))
    with pytest.raises(StoreError, match=rf"^data dir {not_a_dir} is not a directory$"):
        Store(str(not_a_dir), StoreOptions(readonly=True))


def test_missing_data_dir_opened_read_only_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=rf"^data dir {tmp_path / 'none'} does not exist$"):
        Store(str(tmp_path / "none"), StoreOptions(readonly=True))


def open_as_someone_else(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Open a store in a process that obeys file modes: as root, one without the capabilities
    that let root write anywhere (setpriv drops them from the bounding set)."""
    script = (
        "import sys\n"
        "from registry.errors import StoreError\n"
        "from registry.store import Store\n"
        "try:\n"
        "    Store(sys.argv[1])\n"
        "except StoreError as error:\n"
        "    print(error)\n"
        "    sys.exit(3)\n"
    )
    command = [sys.executable, "-c", script, str(data_dir)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a dir unwritable")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("what", ["an empty dir", "a store of read-only files"])
def test_data_dir_not_writable_is_named_with_the_cause(tmp_path: Path, what: str) -> None:
    data_dir = tmp_path / "data"
    if what == "an empty dir":
        data_dir.mkdir()
        os.chmod(data_dir, 0o555)
    else:
        Store(str(data_dir), StoreOptions(durable=False)).close()
        for name in ("data.mdb", "lock.mdb"):
            os.chmod(data_dir / name, 0o400)
    result = open_as_someone_else(data_dir)
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith(f"data dir {data_dir}: "), result.stdout
    assert "Permission denied" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_new_data_dir_and_store_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    Store(str(data_dir), StoreOptions(durable=False)).close()
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "data.mdb") == 0o600
    assert mode(data_dir / "lock.mdb") == 0o600


@pytest.mark.usefixtures("permissive_umask")
def test_a_readable_store_made_earlier_is_made_private_on_open(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)  # as `mkdir` or a deploy script would
    Store(str(data_dir), StoreOptions(durable=False)).close()
    assert mode(data_dir) == 0o700  # a new store in it: the dir is made private too
    for name in ("data.mdb", "lock.mdb"):
        os.chmod(data_dir / name, 0o644)
    os.chmod(data_dir, 0o755)
    Store(str(data_dir), StoreOptions(durable=False)).close()
    assert mode(data_dir / "data.mdb") == mode(data_dir / "lock.mdb") == 0o600
    assert mode(data_dir) == 0o755  # an existing store's dir is the operator's choice


@pytest.mark.usefixtures("permissive_umask")
def test_a_backup_is_as_private_as_the_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"), StoreOptions(durable=False))
    try:
        store.copy_to(str(tmp_path / "backup"))
    finally:
        store.close()
    assert mode(tmp_path / "backup") == 0o700
    assert mode(tmp_path / "backup" / "data.mdb") == 0o600


HOLDER_SCRIPT = """
import sys
from registry.store import Store, StoreOptions
store = Store(sys.argv[1], StoreOptions(durable=False))
with store.read() as txn:
    print("reading", flush=True)
    sys.stdin.read()
"""


def test_opening_a_store_keeps_the_lock_table_of_processes_already_in_it(tmp_path: Path) -> None:
    """LMDB holds an fcntl lock on lock.mdb while a process has the store open; a descriptor
    of that file opened and closed by the same process drops the lock, and the next process
    to open the store then resets the lock table under the others (readers lost, pages of
    their snapshots reused: MDB_CORRUPTED, SIGSEGV)."""
    Store(str(tmp_path), StoreOptions(durable=False)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "reading\n"
        store = Store(str(tmp_path), StoreOptions(durable=False))
        try:
            readers = store.env.readers()
        finally:
            store.close()
    finally:
        holder.communicate("", timeout=30)
    assert f"{holder.pid} " in readers, readers
