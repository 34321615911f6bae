"""The pusher's view of the sync, kept in a small JSON file that `idnode status` reads.

Fields: `upstream`, `state` (starting, connected, pushing, idle, failing, refused),
`updated` and `last_ok` (seconds since the epoch), `acked_sequence`, `node_id`, and
while failing: `error`, `code`, `failures` (in a row), `failing_since`, `retry_in_seconds`.
"""

from __future__ import annotations

import json
import os
from typing import Any

OK_STATES = frozenset({"connected", "pushing", "idle"})
REFUSED_STATE = "refused"
UNREACHABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


def write(path: str, status: dict[str, Any]) -> None:
    """Replace the file at `path` atomically (a reader never sees half of it)."""
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(status, handle)
    os.replace(temporary, path)
