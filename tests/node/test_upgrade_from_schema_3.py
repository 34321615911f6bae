"""A data dir written by the last idnode at schema 3 (tests/registry/make_schema3_store.py,
with that idnode's own code) upgrades in place on the first start of this one: a backup
first, its change log chained and signed, verify clean before and after."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from tests.node.conftest import run_cli, start_node
from tests.registry.make_schema3_store import FIXTURE

FAST_SIGNING = {"IDNODE_SIGN_INTERVAL_SECONDS": "0.2"}


def _verify(data_dir: Path) -> dict[str, object]:
    done = run_cli("verify", "--data-dir", str(data_dir), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def _resolve_verified(server: str, identifier: str) -> tuple[int, dict[str, object]]:
    done = run_cli("resolve", identifier, "--verify", "--server", server, "--json", token=None)
    return done.returncode, json.loads(done.stdout)


def test_a_schema_3_data_dir_is_backed_up_chained_and_signed_on_first_start(
    tmp_path: Path,
) -> None:
    with tarfile.open(FIXTURE) as packed:
        packed.extractall(tmp_path, filter="data")
    data_dir = tmp_path / "data"
    written = (data_dir / "data.mdb").read_bytes()
    before = _verify(data_dir)
    assert "no hash chain yet" in str(before["chain"])
    assert (data_dir / "data.mdb").read_bytes() == written  # verify reads, never upgrades
    assert int(str(before["first_sequence"])) > 1  # a trimmed log: the chain starts later

    node = start_node(data_dir, env=FAST_SIGNING, init=False)
    try:
        assert "upgrading the data dir's schema in place" in node.log()
        for identifier in ("88.118.8/item-0003", "88.118.8/b-7", "88.118.8/large"):
            code, shown = _resolve_verified(node.grpc, identifier)
            assert code == 0, shown
        code, shown = _resolve_verified(node.grpc, "88.118.8/item-0001")  # trimmed before
        assert code == 1 and "older than the change log keeps" in json.dumps(shown)
    finally:
        node.stop()

    (backup,) = data_dir.glob("backup-schema-3-*")
    assert (backup / "data.mdb").exists()
    kept = _verify(backup)
    assert "no hash chain yet" in str(kept["chain"])  # the older store, as it was
    assert kept["records"] == before["records"]
    after = _verify(data_dir)
    assert after["records"] == int(str(before["records"])) + 1  # and 0.NA/88.118, its key
    assert "signatures checked with the key from HS_PUBKEY of 0.na/88.118" in str(after["chain"])
    assert f"signed up to {after['last_sequence']}" in str(after["chain"])

    node = start_node(data_dir, env=FAST_SIGNING, init=False)
    node.stop()
    assert len(list(data_dir.glob("backup-schema-3-*"))) == 1
    assert "upgrading" not in node.log().split("upgraded")[-1]  # the second start: none
