"""How the pusher lives with failures: backoff, one log line per change of cause, metrics.

A failure is anything that ends a session (the upstream unreachable, a refused
call, a protocol violation, a bug). Failures count up until a session makes
progress (an acknowledged push or snapshot, or nothing left to push): a session
whose Hello succeeds and whose push then fails is still failing, so its backoff
keeps growing rather than restarting at the first step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

import metrics
from registry.errors import IdnodeError

log = logging.getLogger(__name__)

# The upstream answers, but refuses this node's copy (another identity, an older copy).
REFUSED = grpc.StatusCode.FAILED_PRECONDITION.name
PROTOCOL = "PROTOCOL"  # the upstream answered what the protocol does not allow
INTERNAL = "INTERNAL"  # a bug in this node's sync
# Failure series that exist at 0 from the start, so that an alert's increase() sees
# the first of them.
KNOWN_CODES = (
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNAUTHENTICATED", "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", REFUSED, PROTOCOL, INTERNAL,
)  # fmt: skip


class SyncError(Exception):
    """The upstream answered something the protocol does not allow."""


class Refusal(Exception):
    """This side cannot go on with the copy the other side holds (another node prefix)."""


def backoff_seconds(
    failures: int, initial_seconds: float, max_seconds: float, draw: Callable[[], float]
) -> float:
    """Exponential in the consecutive failures, capped, with "equal jitter" (half fixed)."""
    ceiling = min(max_seconds, initial_seconds * 2.0**failures)
    return ceiling / 2 + draw() * ceiling / 2


def code_of(error: BaseException) -> str:
    """A bounded name for the failure: the gRPC status, PROTOCOL or INTERNAL."""
    if isinstance(error, grpc.Call):
        return str(error.code().name)
    if isinstance(error, Refusal):
        return REFUSED
    if isinstance(error, (SyncError, IdnodeError, ValueError)):
        return PROTOCOL
    return INTERNAL


def describe(error: BaseException) -> str:
    if isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    reason: str
    count: int  # consecutive failures, this one included
    since: float  # when the first of them happened (seconds since the epoch)
    retry_in_seconds: float


class Failures:
    """Consecutive failures of the sync with one upstream.

    A subclass names another link (`what`, the log field `peer`) and counts its own
    metrics (`_declare`, `_count`, `_cleared`): the replica's follower does."""

    what = "upstream sync"  # how log lines name the link
    peer = "upstream"  # the log field naming the other side
    refusal = "the upstream refuses this node's copy"

    def __init__(
        self,
        upstream: str,
        initial_seconds: float,
        max_seconds: float,
        draw: Callable[[], float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.upstream = upstream
        self.count = 0
        self.since = 0.0
        self._initial = initial_seconds
        self._max = max_seconds
        self._draw = draw
        self._clock = clock
        self._cause = ""  # what was last logged; a new cause is logged again
        self._declare()

    def failed(self, error: BaseException) -> Failure:
        """Count `error`, log it when its cause differs from the last one; the backoff."""
        code, reason = code_of(error), describe(error)
        self.count += 1
        if self.count == 1:
            self.since = self._clock()
        self._count(code)
        # The details of a refusal say what to do; other codes' details vary with
        # addresses and timings, so the code alone is the cause.
        cause = reason if code in (REFUSED, PROTOCOL, INTERNAL) else code
        if cause != self._cause:
            self._cause = cause
            self._log(code, reason, error)
        delay = backoff_seconds(self.count, self._initial, self._max, self._draw)
        return Failure(code, reason, self.count, self.since, delay)

    def recovered(self) -> None:
        """A session made progress: the next failure starts the backoff afresh."""
        if self.count:
            log.info(
                f"{self.what} recovered",
                extra={
                    self.peer: self.upstream,
                    "failures": self.count,
                    "failing_seconds": round(self._clock() - self.since, 1),
                },
            )
            self._cleared()
        self.count = 0
        self._cause = ""

    def _declare(self) -> None:
        """Series at 0 from the start."""
        metrics.SYNC_CONSECUTIVE_FAILURES.labels(self.upstream).set(0)
        for code in KNOWN_CODES:
            metrics.SYNC_FAILURES.labels(self.upstream, code)

    def _count(self, code: str) -> None:
        metrics.SYNC_PUSHES.labels(self.upstream, "error").inc()
        metrics.SYNC_FAILURES.labels(self.upstream, code).inc()
        metrics.SYNC_CONSECUTIVE_FAILURES.labels(self.upstream).set(self.count)

    def _cleared(self) -> None:
        metrics.SYNC_CONSECUTIVE_FAILURES.labels(self.upstream).set(0)

    def _log(self, code: str, reason: str, error: BaseException) -> None:
        extra = {self.peer: self.upstream, "error": reason}
        note = "; retrying with backoff, logged again only when the cause changes"
        if code == REFUSED:
            log.error(self.refusal + note, extra=extra)
        elif code == INTERNAL:
            log.error(f"{self.what} session failed" + note, extra=extra, exc_info=error)
        else:
            log.warning(f"{self.what} failing" + note, extra=extra)
