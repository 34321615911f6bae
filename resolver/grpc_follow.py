"""Following referrals on a caller's behalf (`recursive`): one deadline per call, bounded
hops, outbound calls and answer bytes, loops detected, and one error for every failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc

import metrics
from proto import resolver_pb2, resolver_pb2_grpc
from registry import sites, values
from registry.errors import HandleNotFound, InvalidIdentifier, Unavailable
from resolver.tls import ClientTls, SiteStubs

MAX_REFERRAL_HOPS = 4
FOLLOW_DEADLINE_SECONDS = 2.0  # for all the following one call does, whatever its hops or items
MAX_CONCURRENT_FOLLOWS = 8  # outbound calls in flight per follower (one per process)
# A referred node's answer: one record at most, so the record limit and some framing.
MAX_ANSWER_BYTES = values.MAX_RECORD_BYTES + (64 << 10)
MAX_FOLLOW_CHANNELS = 64
SLOT_WAIT_SECONDS = 0.05

# One message for every way a referred site can fail (refused, silent, unresolvable,
# not gRPC, too large): the answer must not tell a caller which ports are open where.
UNANSWERED = "referral target did not answer"
BUSY = "too many referrals are being followed at once; try again"


class ReferralFollower:
    """Asks each referred site in turn over a small pool of channels, one per site."""

    def __init__(
        self,
        deadline_seconds: float = FOLLOW_DEADLINE_SECONDS,
        max_concurrent: int = MAX_CONCURRENT_FOLLOWS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        clock: Callable[[], float] = time.monotonic,
        tls: ClientTls | None = None,
    ) -> None:
        self._deadline_seconds = deadline_seconds
        # For sites that announce TLS; the CA file is read once, here (a bad one stops start-up).
        self._stubs = SiteStubs(
            resolver_pb2_grpc.ResolverStub,
            tls,
            MAX_FOLLOW_CHANNELS,
            options=[
                ("grpc.max_receive_message_length", max_answer_bytes),
                ("grpc.enable_retries", 0),
            ],
        )
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._clock = clock
        self._limits = metrics.Tally(metrics.LIMIT_HITS)
        metrics.on_flush(self._limits.flush)

    def deadline(self) -> float:
        """The deadline for everything one call follows, from now (on this follower's clock)."""
        return self._clock() + self._deadline_seconds

    def follow(
        self,
        request: resolver_pb2.ResolveRequest,
        reply: resolver_pb2.ResolveResponse,
        deadline: float | None = None,
    ) -> resolver_pb2.ResolveResponse:
        """The answer at the end of `reply`'s referrals: at most MAX_REFERRAL_HOPS, never
        one site twice, all before `deadline` (default: `self.deadline()`; a batch passes
        one deadline for all its items). The caller's credential is never passed on.

        Raises HandleNotFound / InvalidIdentifier as the answering node said, Unavailable
        for a loop, too many hops, the deadline, too many calls in flight, or any failure
        of a site (always UNANSWERED then).
        """
        if deadline is None:
            deadline = self.deadline()
        onward = resolver_pb2.ResolveRequest(
            identifier=request.identifier, types=request.types, indexes=request.indexes
        )
        asked: set[str] = set()
        for _hop in range(MAX_REFERRAL_HOPS):
            if not reply.HasField("referral") or not reply.referral.sites:
                return reply
            site = reply.referral.sites[0]
            address = site.grpc_address
            if address in asked:
                raise Unavailable(f"referral loop: {address} referred back")
            asked.add(address)
            reply = self._ask(address, site.grpc_tls, onward, deadline)
        if reply.HasField("referral") and reply.referral.sites:
            raise Unavailable(f"more than {MAX_REFERRAL_HOPS} referrals for {request.identifier}")
        return reply

    def close(self) -> None:
        self._stubs.close()

    def _ask(
        self, address: str, tls: bool, request: resolver_pb2.ResolveRequest, deadline: float
    ) -> resolver_pb2.ResolveResponse:
        if not sites.is_valid_address(address):  # stored before sites were checked on write
            raise Unavailable(UNANSWERED)
        remaining = deadline - self._clock()
        if remaining <= 0:
            self._limits.add(("follow_deadline",))
            raise Unavailable(UNANSWERED)
        if not self._slots.acquire(timeout=min(remaining, SLOT_WAIT_SECONDS)):
            self._limits.add(("follow_concurrency",))
            raise Unavailable(BUSY)
        try:
            reply: resolver_pb2.ResolveResponse = self._stubs.get(address, tls).Resolve(
                request, timeout=max(deadline - self._clock(), 0.001)
            )
        except grpc.RpcError as failure:
            code = failure.code() if isinstance(failure, grpc.Call) else None
            # The referred node's own words are not passed on: they could be anything.
            if code == grpc.StatusCode.NOT_FOUND:
                raise HandleNotFound(f"identifier {request.identifier} not found") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidIdentifier(
                    f"identifier {request.identifier} was refused as invalid where it is served"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                self._limits.add(("follow_deadline",))
            raise Unavailable(UNANSWERED) from None
        except ValueError:  # the site's channel was closed for a newer site meanwhile
            raise Unavailable(UNANSWERED) from None
        finally:
            self._slots.release()
        return reply
