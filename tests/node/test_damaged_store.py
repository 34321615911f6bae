"""A damaged or unusable data dir stops every command with one line naming it, never a signal."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions
from tests.node.conftest import ADMIN_TOKEN, IDNODE, run_cli

SERVE_TIMEOUT_SECONDS = 60.0


def build_store(data_dir: Path, identifiers: int = 3000) -> None:
    """A node's store with enough records that the data file spans a few hundred pages."""
    store = Store(str(data_dir), StoreOptions(durable=False))
    try:
        registry = Registry(store, "88.118")
        registry.ensure_node_prefix()
        store.write(lambda batch: batch.put_meta("node_prefix", b"88.118"))
        accounts.ensure_admin(store, ADMIN_TOKEN)
        admin = accounts.authenticate(store, ADMIN_TOKEN)
        registry.create_enterprise(admin, code="8")
        value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://example.com/" * 10)
        records = [
            handle_pb2.Record(identifier=f"88.118.8/item-{n}", values=[value])
            for n in range(identifiers)
        ]
        registry.batch_register(admin, records)
    finally:
        store.close()


def serve(
    data_dir: Path, *extra: str, obey_modes: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [
        IDNODE, "serve", "--data-dir", str(data_dir), "--node-prefix", "88.118",
        "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--no-dns",
        "--workers", "1", *extra,
    ]  # fmt: skip
    if obey_modes and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a dir unwritable")
        # root without the capabilities that let it write anywhere
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IDNODE_")}
    environment["IDNODE_ADMIN_TOKEN"] = ADMIN_TOKEN
    return subprocess.run(
        command, capture_output=True, text=True, timeout=SERVE_TIMEOUT_SECONDS, env=environment
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode > 0, f"ended by signal {-result.returncode}: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("idnode:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("keep_pages", [3, 40])
def test_truncated_data_file_stops_serve_verify_and_status_with_a_message(
    tmp_path: Path, keep_pages: int
) -> None:
    data_dir = tmp_path / "data"
    build_store(data_dir)
    data_file = data_dir / "data.mdb"
    os.truncate(data_file, keep_pages * 4096)
    for result in (
        run_cli("verify", "--data-dir", str(data_dir)),
        run_cli("status", "--data-dir", str(data_dir)),
        serve(data_dir),
    ):
        assert_one_line_refusal(result, str(data_file), "truncated")
    # Nothing opened it for writing: the file is as damaged as it was, not "repaired" by
    # LMDB writing new pages past a hole.
    assert data_file.stat().st_size == keep_pages * 4096


@pytest.mark.parametrize("init", [True, False])
def test_a_data_dir_that_is_a_file_stops_every_command_with_one_line(
    tmp_path: Path, init: bool
) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("not a directory\n")
    assert_one_line_refusal(serve(not_a_dir, *(["--init"] if init else [])), str(not_a_dir))
    for command in ("verify", "status", "backup"):
        args = [command, "--data-dir", str(not_a_dir)]
        if command == "backup":
            args.insert(1, str(tmp_path / "copy"))
        assert_one_line_refusal(run_cli(*args), str(not_a_dir))


@pytest.mark.parametrize("what", ["its parent", "the data dir"])
def test_a_data_dir_that_cannot_be_written_stops_serve_with_one_line(
    tmp_path: Path, what: str
) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    data_dir = parent / "data"
    if what == "the data dir":
        data_dir.mkdir()
        os.chmod(data_dir, 0o500)
    else:
        os.chmod(parent, 0o500)
    result = serve(data_dir, "--init", obey_modes=True)
    assert_one_line_refusal(result, str(data_dir), "Permission denied")
