"""Progress lines: one clean final line off a terminal, periodic lines for long work."""

from __future__ import annotations

import io

import pytest

from idnode.cli import progress
from idnode.cli.progress import Progress


def test_off_a_terminal_only_one_final_line() -> None:
    stream = io.StringIO()
    bar = Progress("importing rows.csv", 5000, "rows", stream=stream)
    for done in range(0, 5001, 500):
        bar.update(done)
    bar.finish()
    bar.finish()  # a second finish adds nothing
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("importing rows.csv: done 5.00k/5.00k rows, ")


def test_long_work_logs_a_line_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LOG_INTERVAL_SECONDS", 0.0)
    stream = io.StringIO()
    bar = Progress("backup", 0, "bytes", stream=stream)
    bar.total = 4 << 20
    bar.update(2 << 20)
    bar.finish()
    first, last = stream.getvalue().splitlines()
    assert first.startswith("backup: at 2.00MB/4.00MB (50%), ")
    assert last.startswith("backup: done 2.00MB/4.00MB, ")
