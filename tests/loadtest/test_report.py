"""The bench's arithmetic and table: pairing of rounds, spreads, pinning plans."""

from __future__ import annotations

import pytest

from loadtest import machine, report
from loadtest.report import Row, Sample


def test_rounds_alternate_reference_first() -> None:
    calls: list[str] = []

    def reference() -> Sample:
        calls.append("reference")
        return Sample(100.0)

    def subject() -> Sample:
        calls.append("subject")
        return Sample(50.0)

    references, subjects = report.interleaved("x", 3, reference, subject)
    assert calls == ["reference", "subject"] * 3
    assert len(references) == len(subjects) == 3


def test_ratios_pair_each_subject_round_with_its_reference_round() -> None:
    row = Row(
        "x", "/s", [Sample(50), Sample(90), Sample(40)], [Sample(100), Sample(100), Sample(80)]
    )
    assert row.ratios() == [0.5, 0.9, 0.5]
    text = report.table([row], {"machine": "m"})
    assert "**0.50×** (0.50–0.90)" in text
    assert "63.3" not in text  # never a ratio of the medians' mean or similar


def test_cpu_ratio_is_reference_cost_over_subject_cost_for_rates_only() -> None:
    rates = Row("r", "/s", [Sample(1, 200.0)], [Sample(1, 100.0)])
    latencies = Row("l", " ms", [Sample(1, 200.0)], [Sample(1, 100.0)])
    assert rates.cpu_ratios() == [0.5]
    assert latencies.cpu_ratios() == []
    assert "200 / 100 → 0.50×" in report.table([rates], {})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], "—"),
        ([5.0], "5.00/s"),
        ([3000.0, 1000.0, 2000.0], "2,000/s (1,000–3,000)"),
        ([12.5, 11.0], "11.8/s (11.0–12.5)"),
    ],
)
def test_spread_is_median_then_min_and_max(values: list[float], expected: str) -> None:
    assert report.spread(values, "/s") == expected


def test_a_busy_load_generator_is_named_in_a_note() -> None:
    busy = Row("busy", "/s", [Sample(1, None, 0.95)], [Sample(1, None, 0.97)])
    idle = Row("idle", "/s", [Sample(1, None, 0.3)], [Sample(1, None, 0.4)])
    text = report.table([busy, idle], {"machine": "here"})
    assert "| busy [1] |" in text and "| idle |" in text
    assert "- [1] the load generator used ≥ 90 %" in text
    assert text.startswith("- **machine**: here")


def test_notes_are_numbered_in_order_across_rows() -> None:
    rows = [
        Row("a", "/s", [Sample(1)], notes=["first"]),
        Row("b", "/s", [Sample(1)], notes=["second"]),
    ]
    text = report.table(rows, {})
    assert "| a [1] |" in text and "| b [2] |" in text
    assert "- [1] first" in text and "- [2] second" in text


@pytest.mark.parametrize(
    ("cpus", "taskset", "server", "client"),
    [
        ([0], "/usr/bin/taskset", (), ()),
        ([0, 1], None, (), ()),
        ([0, 1], "/usr/bin/taskset", (0,), (1,)),
        ([4, 5, 6], "/usr/bin/taskset", (4, 5), (6,)),
        ([0, 1, 2, 3], "/usr/bin/taskset", (0, 1), (2, 3)),
    ],
)
def test_pinning_gives_servers_the_first_half(
    cpus: list[int], taskset: str | None, server: tuple[int, ...], client: tuple[int, ...]
) -> None:
    plan = machine.plan(cpus, taskset)
    assert (plan.server, plan.client) == (server, client)
    command = plan.server_command(["nsd", "-d"])
    if server:
        assert command[:3] == ["taskset", "-c", ",".join(map(str, server))]
        assert "CPU" in plan.describe()
    else:
        assert command == ["nsd", "-d"]
        assert "not pinned" in plan.describe()


def test_cpu_time_and_memory_of_this_process_are_read() -> None:
    import os

    assert machine.cpu_seconds([os.getpid()]) > 0
    memory = machine.memory_kib(os.getpid())
    assert memory["RssAnon"] > 0 and "RssFile" in memory
    assert machine.family(os.getpid())[0] == os.getpid()


def test_nothing_here_imports_locust() -> None:
    """Importing Locust monkey-patches sockets and threads for gevent: never in this process."""
    import sys

    assert "locust" not in sys.modules and "gevent.monkey" not in sys.modules
