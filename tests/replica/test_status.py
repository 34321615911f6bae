"""When a replica takes reads: a whole copy, a live follower, lag within the bound."""

from __future__ import annotations

import pytest

from sync.replica.status import serving

NOW = 1_800_000_000.0
GOOD = {"state": "following", "copied": True, "lag_seconds": 0.0, "updated": NOW - 1}


@pytest.mark.parametrize(
    ("report", "max_lag", "expected", "why"),
    [
        (GOOD, 0.0, True, ""),
        ({**GOOD, "state": "connecting", "lag_seconds": 500.0}, 0.0, True, ""),  # stale reads
        ({**GOOD, "state": "connecting", "lag_seconds": 500.0}, 60.0, False, "above"),
        ({**GOOD, "lag_seconds": 5.0}, 10.0, True, ""),
        ({**GOOD, "state": "copying"}, 0.0, False, "copying"),
        ({**GOOD, "copied": False}, 0.0, False, "copying"),
        ({**GOOD, "updated": NOW - 60}, 0.0, False, "no report"),
        ({}, 0.0, False, "no report"),
    ],
)
def test_serving(report: dict[str, object], max_lag: float, expected: bool, why: str) -> None:
    ok, reason = serving(report, max_lag, NOW)
    assert ok == expected
    assert why in reason
