"""`idnode serve` makes a new node only when asked (--init): a missing or empty data dir
(an unmounted volume, a wrong path) stops start-up with one line instead."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from registry.identity import node_id
from registry.store import Store, StoreOptions
from tests.node.conftest import IDNODE, start_node


def identity_of(data_dir: Path) -> str | None:
    store = Store(str(data_dir), StoreOptions(readonly=True))
    try:
        return node_id(store)
    finally:
        store.close()


@pytest.mark.parametrize("layout", ["missing", "empty", "empty data.mdb"])
def test_serve_without_init_stops_with_one_line_on_a_data_dir_without_a_store(
    tmp_path: Path, layout: str
) -> None:
    data_dir = tmp_path / "data"
    if layout != "missing":
        data_dir.mkdir()
    if layout == "empty data.mdb":
        (data_dir / "data.mdb").touch()
    before = sorted(os.listdir(data_dir)) if data_dir.exists() else None
    done = subprocess.run(
        [IDNODE, "serve", "--data-dir", str(data_dir), "--no-dns",
         "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"idnode: data dir {data_dir} ") and "--init" in lines[0]
    assert (sorted(os.listdir(data_dir)) if data_dir.exists() else None) == before
    if layout == "empty data.mdb":
        assert (data_dir / "data.mdb").stat().st_size == 0


def test_init_makes_a_node_whose_identity_then_stays(tmp_path: Path) -> None:
    data_dir = tmp_path / "missing" / "data"
    first = start_node(data_dir)  # --init
    assert first.stop() == 0
    made = identity_of(data_dir)
    assert made is not None and len(made) == 32
    again = start_node(data_dir, init=False)  # an existing store needs no --init
    assert again.stop() == 0
    with_init = start_node(data_dir)  # and --init on one changes nothing
    assert with_init.stop() == 0
    assert identity_of(data_dir) == made
    assert with_init.log().count("node identity created") == 1  # one log for all three starts
