"""`python -m loadtest.ab` runs end to end on two builds (tiny sizes; the numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadtest import node as node_process


@pytest.mark.slow
@pytest.mark.parametrize(
    ("call", "clients"), [("resolve", 16), ("batch_register", 4)]
)  # fmt: skip
def test_two_builds_are_measured_in_turn_and_compared(call: str, clients: int) -> None:
    idnode = node_process.default_idnode()
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.ab", "--before", idnode, "--after", idnode,
         "--call", call, "--rounds", "2", "--seconds", "0.5"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"{call}, {clients} concurrent clients, 2 rounds each"
    assert lines[1].lstrip().startswith("before ") and lines[2].lstrip().startswith("after ")
    assert "after/before calls/s:" in done.stdout
    assert done.stderr.count("round ") >= 2
