"""Where a sync session resumes: incrementally after a sequence, or with a snapshot."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resume:
    """Push change-log entries after `after`; `snapshot` first when the log cannot serve."""

    after: int
    snapshot: bool
    reason: str


def resume_point(local_acked: int, upstream_acked: int, first: int, last: int) -> Resume:
    """Decide how a session starts from what both sides hold.

    `local_acked` is the acknowledged sequence this node stored durably,
    `upstream_acked` what the upstream says it holds now, `first`..`last` the
    change log this node still keeps (first = last + 1 when it is empty).
    """
    if upstream_acked > last:
        return Resume(0, True, "the upstream holds sequences this change log never wrote")
    if upstream_acked < local_acked:
        return Resume(0, True, "the upstream lost entries it had acknowledged")
    if upstream_acked + 1 < first:
        return Resume(0, True, "the change log no longer reaches back to the upstream's position")
    return Resume(upstream_acked, False, "incremental")
