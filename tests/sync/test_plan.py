"""Where a sync session resumes, and how long the pusher waits after a failure."""

from __future__ import annotations

import pytest

from sync.plan import resume_point
from sync.retry import backoff_seconds


@pytest.mark.parametrize(
    ("local", "upstream", "first", "last", "after", "snapshot"),
    [
        (0, 0, 1, 0, 0, False),  # nothing written, nothing held
        (0, 0, 1, 50, 0, False),  # first sync: the whole log
        (20, 20, 1, 50, 20, False),  # resume where both agree
        (20, 35, 1, 50, 35, False),  # acknowledged but not stored before a crash: skip ahead
        (20, 0, 1, 50, 0, True),  # the upstream lost its copy
        (20, 10, 1, 50, 0, True),  # the upstream went back in time
        (0, 0, 30, 50, 0, True),  # the log was trimmed before the upstream got it
        (40, 40, 30, 50, 40, False),  # trimmed, but only what the upstream holds
        (0, 60, 1, 50, 0, True),  # the upstream holds more than this log ever wrote
        (50, 50, 51, 50, 50, False),  # everything trimmed and everything held
    ],
)
def test_resume_point(
    local: int, upstream: int, first: int, last: int, after: int, snapshot: bool
) -> None:
    resume = resume_point(local, upstream, first, last)
    assert (resume.after, resume.snapshot) == (after, snapshot), resume.reason


def test_backoff_grows_exponentially_to_a_cap_with_jitter() -> None:
    lowest = [backoff_seconds(n, 0.5, 8.0, lambda: 0.0) for n in range(1, 8)]
    highest = [backoff_seconds(n, 0.5, 8.0, lambda: 1.0) for n in range(1, 8)]
    assert highest == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert lowest == [h / 2 for h in highest]
