"""Where a replica's Follow call starts: go on from its position, or a snapshot first."""

from __future__ import annotations

import pytest

from proto import replica_pb2
from sync.replica.marks import Parent
from sync.replica.source import plan

LOG = "a" * 32
OLD = "b" * 32
TIMES = {5: 500, 10: 1000, 20: 2000}


def _at(sequence: int) -> int | None:
    return TIMES.get(sequence)


@pytest.mark.parametrize(
    ("log_id", "after", "stamp", "parent", "first", "last", "snapshot", "why"),
    [
        ("", 0, 0, None, 1, 20, True, "holds no copy yet"),
        (LOG, 0, 0, None, 1, 20, False, "incremental"),
        (LOG, 10, 1000, None, 5, 20, False, "incremental"),
        (LOG, 20, 2000, None, 5, 20, False, "incremental"),  # caught up
        (LOG, 4, 0, None, 5, 20, False, "incremental"),  # entry 4 trimmed, 5 still there
        (LOG, 3, 0, None, 5, 20, True, "no longer reaches back"),
        (LOG, 21, 0, None, 5, 20, True, "never wrote"),  # the primary lost entries
        (LOG, 10, 999, None, 5, 20, True, "differs"),  # same log, another history
        (OLD, 10, 1000, None, 5, 20, True, "another change log"),
        (OLD, 10, 1000, Parent(OLD, 10), 5, 20, False, "incremental"),  # promoted primary
        (OLD, 11, 1000, Parent(OLD, 10), 5, 20, True, "another change log"),  # ahead of fork
        ("c" * 32, 10, 1000, Parent(OLD, 10), 5, 20, True, "another change log"),
    ],
)
def test_the_plan_table(
    log_id: str,
    after: int,
    stamp: int,
    parent: Parent | None,
    first: int,
    last: int,
    snapshot: bool,
    why: str,
) -> None:
    request = replica_pb2.FollowRequest(
        log_id=log_id, after_sequence=after, after_timestamp_ns=stamp
    )
    decided = plan(request, LOG, parent, first, last, _at)
    assert decided.snapshot == snapshot
    assert why in decided.reason
