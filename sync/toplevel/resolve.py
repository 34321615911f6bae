"""The top-level node's Resolver: referrals from homing, the mirror during takeover.

A BatchResolve has the node's bounds (resolver.batch): at most 1,000 identifiers
and 4 MiB in, and a reply of at most `max_response_bytes` out.
"""

from __future__ import annotations

import grpc

import metrics
from proto import resolver_pb2
from registry import errors, values
from registry.identifier import parse
from resolver import batch
from resolver.grpc_errors import status_of
from resolver.grpc_follow import ReferralFollower
from resolver.grpc_resolve import DEFAULT_MAX_RESPONSE_BYTES, SUCCESS
from resolver.tls import ClientTls
from sync.toplevel.mirror import DELEGATION_TTL_SECONDS, NODE_REFERRAL_TTL_SECONDS
from sync.toplevel.service import TopLevelService


class TopLevelResolver:
    """`idnode.v1.Resolver` on the top-level node: referrals, or the mirror during takeover.

    A BatchResolve reply holds at most `max_response_bytes`: past it, entries are
    marked RESOURCE_EXHAUSTED naming the limit (resolver.batch.ReplyBudget)."""

    def __init__(
        self,
        service: TopLevelService,
        sites_tls: ClientTls | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._service = service
        self._referrals = ReferralFollower(tls=sites_tls)
        self._budget = batch.ReplyBudget(max_response_bytes)
        self._limits = metrics.Tally(metrics.LIMIT_HITS)
        metrics.on_flush(self._limits.flush)

    def resolve(self, request: resolver_pb2.ResolveRequest, context: grpc.ServicerContext) -> bytes:
        del context
        return self._resolve(request, self._referrals.deadline()).SerializeToString()

    def _resolve(
        self, request: resolver_pb2.ResolveRequest, deadline: float
    ) -> resolver_pb2.ResolveResponse:
        parsed = parse(request.identifier)
        home = self._service.mirror.home(parsed.prefix)
        if home is None:
            raise errors.NotResponsible(f"no node is homed for prefix {parsed.prefix}")
        if self._service.in_takeover(home):
            return self._from_mirror(request)
        reply = resolver_pb2.ResolveResponse(identifier=str(parsed), code=home.code)
        reply.referral.code = home.code
        reply.referral.prefix = home.prefix
        reply.referral.sites.extend(home.sites)
        reply.referral.ttl = (
            DELEGATION_TTL_SECONDS if home.code == 303 else NODE_REFERRAL_TTL_SECONDS
        )
        if request.recursive:
            return self._referrals.follow(request, reply, deadline)
        return reply

    def batch_resolve(
        self, request: resolver_pb2.BatchResolveRequest, context: grpc.ServicerContext
    ) -> resolver_pb2.BatchResolveResponse:
        """One result per identifier, in order, within the reply's byte budget.
        Raises TooLarge past MAX_BATCH_RESOLVE identifiers."""
        batch.check_count(request)
        reply = resolver_pb2.BatchResolveResponse()
        deadline = self._referrals.deadline()  # one for every recursive item together
        if not self._budget.fill(
            reply, request.requests, lambda item, result: self._one_of_batch(item, deadline, result)
        ):
            self._limits.add(("batch_response_bytes",))
        return reply

    def _one_of_batch(
        self,
        item: resolver_pb2.ResolveRequest,
        deadline: float,
        result: resolver_pb2.BatchResolveResult,
    ) -> int:
        """Fill `result` for one item (a failure is reported in it); returns its bytes."""
        try:
            result.response.CopyFrom(self._resolve(item, deadline))
        except errors.IdnodeError as error:
            result.Clear()
            result.status = status_of(error).value[0]
            result.error = str(error)
        return batch.entry_bytes(result.ByteSize())

    def _from_mirror(self, request: resolver_pb2.ResolveRequest) -> resolver_pb2.ResolveResponse:
        record = self._service.mirror.record(request.identifier)
        selected = values.select(
            record.values, request.types, request.indexes, include_restricted=False
        )
        if (request.types or request.indexes) and not selected:
            raise values.none_matching(record.identifier, request.types, request.indexes)
        reply = resolver_pb2.ResolveResponse(
            identifier=record.identifier, code=SUCCESS, takeover=True
        )
        reply.values.extend(selected)
        return reply
