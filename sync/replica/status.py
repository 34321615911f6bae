"""A replica's view of itself, in a small JSON file: for `idnode status` and the workers' health.

Fields: `primary` (HOST:PORT), `state` (one of STATES), `applied_sequence`,
`primary_sequence` (the newest the primary reported), `lag_seconds`, `updated` (seconds
since the epoch), `node_id`, and while failing: `error`, `code`, `failures` (in a row),
`failing_since`.
"""

from __future__ import annotations

import json
from typing import Any

from sync.status import write

__all__ = ["STALE_SECONDS", "STATES", "read", "serving", "write"]

STATES = ("connecting", "copying", "following", "failing")
"""connecting: no stream yet, or the primary is away; copying: a snapshot is being taken
in; following: streaming the change log (caught up or catching up); failing: the primary
answers but refuses (a wrong credential, a node prefix that differs)."""
STALE_SECONDS = 10.0  # a report older than this: the follower is not running


def read(path: str) -> dict[str, Any]:
    """The last report, {} when there is none (or it cannot be read)."""
    try:
        with open(path) as handle:
            found: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def serving(report: dict[str, Any], max_lag_seconds: float, now: float) -> tuple[bool, str]:
    """Whether a replica should take reads, and why not.

    It serves while it holds a whole copy (not copying, its follower reporting), even
    when its primary is away (stale reads beat none), unless `max_lag_seconds` (> 0) is
    set and its lag is above it."""
    if not report:
        return False, "no report from the replica's follower yet"
    age = now - float(report.get("updated", 0))
    if age > STALE_SECONDS:
        return False, f"no report from the replica's follower for {age:.0f} s"
    state = str(report.get("state", ""))
    if state == "copying" or not report.get("copied", False):
        return False, "the replica is copying its primary"
    lag = float(report.get("lag_seconds", 0.0))
    if max_lag_seconds > 0 and lag > max_lag_seconds:
        return False, f"lag {lag:.1f} s is above max_lag_seconds {max_lag_seconds:g}"
    return True, ""
