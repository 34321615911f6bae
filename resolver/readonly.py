"""What a read replica changes in the faces: writes refused naming the primary, and reads
that ask for a sequence (read-your-writes) waiting briefly until this copy holds it."""

from __future__ import annotations

import time
from collections.abc import Callable

from registry.errors import InvalidRequest, ReadOnlyReplica, SequenceNotReached
from resolver.follow import ChangeFollower

POLL_SECONDS = 0.002  # a waiting read looks at the change log this often
MAX_MIN_SEQUENCE = 2**63 - 1


class Replica:
    """This node is a replica of `primary` (gRPC HOST:PORT); `primary_http()` is the base
    URL of the primary's HTTP face ("" while unknown)."""

    def __init__(self, primary: str, primary_http: Callable[[], str]) -> None:
        self.primary = primary
        self._primary_http = primary_http

    def refusal(self) -> ReadOnlyReplica:
        site = self._primary_http()
        where = f"the primary at {self.primary}" + (f" ({site})" if site else "")
        return ReadOnlyReplica(
            f"this node is a read replica: send writes to {where}", self.primary, site
        )


class SequenceGate:
    """Read-your-writes: a read carrying `min_sequence` is answered only from a copy that
    holds the change log up to it. A replica behind waits up to `wait_seconds`, then
    refuses with SequenceNotReached (UNAVAILABLE, 503) so the client asks again or asks
    elsewhere; a primary never waits (what it acknowledged, it holds)."""

    def __init__(
        self,
        follower: ChangeFollower,
        wait_seconds: float,
        replica: bool,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._follower = follower
        self._wait_seconds = wait_seconds
        self._replica = replica
        self._clock = clock
        self._sleep = sleep

    def reach(self, min_sequence: int, budget_seconds: float | None = None) -> None:
        """Return once this node holds `min_sequence`. Raises SequenceNotReached (a replica
        still behind after the wait) or InvalidRequest (a primary never wrote it)."""
        follower = self._follower
        follower.poll()
        if min_sequence <= follower.sequence:
            return
        if min_sequence > MAX_MIN_SEQUENCE:
            raise InvalidRequest(f"min_sequence {min_sequence} is out of range")
        if not self._replica:
            raise InvalidRequest(
                f"min_sequence {min_sequence} is beyond this node's change log "
                f"({follower.sequence}): it is not a sequence this node wrote"
            )
        wait = self._wait_seconds if budget_seconds is None else min(
            self._wait_seconds, max(0.0, budget_seconds)
        )  # fmt: skip
        deadline = self._clock() + wait
        while self._clock() < deadline:
            self._sleep(POLL_SECONDS)
            follower.poll()
            if min_sequence <= follower.sequence:
                return
        raise SequenceNotReached(
            f"this replica holds the change log up to {follower.sequence}, not yet "
            f"min_sequence {min_sequence}: ask again, or ask another node"
        )


def parse_min_sequence(text: str) -> int:
    """The value of an X-Idnode-Min-Sequence header. Raises InvalidRequest."""
    text = text.strip()
    if not text.isdigit() or len(text) > 19:
        raise InvalidRequest(f"X-Idnode-Min-Sequence must be a sequence number, not {text[:24]!r}")
    return int(text)
