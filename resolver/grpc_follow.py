"""Following referrals on a caller's behalf (`recursive`): bounded hops, loops detected."""

from __future__ import annotations

import threading
from collections import OrderedDict

import grpc

from proto import resolver_pb2, resolver_pb2_grpc
from registry.errors import HandleNotFound, InvalidIdentifier, Unavailable

MAX_REFERRAL_HOPS = 4
FOLLOW_TIMEOUT_SECONDS = 2.0
MAX_FOLLOW_CHANNELS = 64


class ReferralFollower:
    """Asks each referred site in turn over a small pool of channels, one per site."""

    def __init__(self) -> None:
        self._channels: OrderedDict[str, grpc.Channel] = OrderedDict()
        self._lock = threading.Lock()

    def follow(
        self, request: resolver_pb2.ResolveRequest, reply: resolver_pb2.ResolveResponse
    ) -> resolver_pb2.ResolveResponse:
        """The answer at the end of `reply`'s referrals: at most MAX_REFERRAL_HOPS, never
        one site twice. The caller's credential is never passed on.

        Raises HandleNotFound / InvalidIdentifier as the answering node said, Unavailable
        for a loop, too many hops or a site that cannot be reached.
        """
        onward = resolver_pb2.ResolveRequest(
            identifier=request.identifier, types=request.types, indexes=request.indexes
        )
        asked: set[str] = set()
        for _hop in range(MAX_REFERRAL_HOPS):
            if not reply.HasField("referral") or not reply.referral.sites:
                return reply
            address = reply.referral.sites[0].grpc_address
            if address in asked:
                raise Unavailable(f"referral loop: {address} referred back")
            asked.add(address)
            reply = self._ask(address, onward)
        if reply.HasField("referral") and reply.referral.sites:
            raise Unavailable(f"more than {MAX_REFERRAL_HOPS} referrals for {request.identifier}")
        return reply

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is not None:
                self._channels.move_to_end(address)
                return channel
            if len(self._channels) >= MAX_FOLLOW_CHANNELS:
                # The least recently used site; a call still on it may fail over.
                self._channels.popitem(last=False)[1].close()
            channel = self._channels[address] = grpc.insecure_channel(address)
            return channel

    def _ask(
        self, address: str, request: resolver_pb2.ResolveRequest
    ) -> resolver_pb2.ResolveResponse:
        stub = resolver_pb2_grpc.ResolverStub(self._channel(address))
        try:
            reply: resolver_pb2.ResolveResponse = stub.Resolve(
                request, timeout=FOLLOW_TIMEOUT_SECONDS
            )
        except grpc.RpcError as failure:
            code = failure.code() if isinstance(failure, grpc.Call) else None
            details = failure.details() if isinstance(failure, grpc.Call) else str(failure)
            if code == grpc.StatusCode.NOT_FOUND:
                raise HandleNotFound(details or f"{request.identifier} not found") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidIdentifier(details or "invalid identifier") from None
            raise Unavailable(f"referred site {address} failed: {details}") from None
        return reply
