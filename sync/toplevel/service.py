"""The top-level node's TopLevel service: homing, sync, takeover state, node administration.

Servicers stay thin: protobuf in, a Mirror call, protobuf out. Domain errors end the
call through the gRPC front end's one table (resolver.grpc_errors). Credentials are
checked as the node checks them (resolver.auth: failures counted, logged once per
source and minute, and slowed).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

from proto import handle_pb2, sync_pb2
from registry import accounts, audit, chain, errors
from registry.identifier import parse_prefix
from registry.identity import check_node_id
from resolver.grpc_auth import Authenticator
from resolver.grpc_server import guarded, unary
from resolver.tls import peer_fingerprint
from sync.toplevel import pins
from sync.toplevel.health import Prober
from sync.toplevel.mirror import (
    DELEGATION_TTL_SECONDS,
    NODE_REFERRAL_TTL_SECONDS,
    TAKEOVER_TTL_SECONDS,
    Home,
    Mirror,
)

log = logging.getLogger(__name__)

TOPLEVEL = "idnode.v1.TopLevel"


class TopLevelService:
    """AddNode, Hello, Push, Snapshot, ReportStats, Locate, ListNodes, ResetNode."""

    def __init__(
        self,
        mirror: Mirror,
        prober: Prober,
        own_sites: list[handle_pb2.Site],
        asks_client_certs: bool = False,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.mirror = mirror
        self._auth = authenticator or Authenticator(mirror.store)
        self.asks_client_certs = asks_client_certs  # mutual TLS required: pins can be met
        self.prober = prober
        self.own_sites = own_sites  # filled in once the server is bound
        self._refusals: dict[str, str] = {}  # node prefix -> why its last refusal happened
        self._refusals_lock = threading.Lock()

    # Credentials ----------------------------------------------------------------

    def _caller(self, context: grpc.ServicerContext) -> accounts.Account:
        """The calling account. Raises AuthenticationRequired without a token,
        AuthenticationFailed for a wrong one or a source that failed too often."""
        caller = self._auth.caller(context)
        if caller is None:
            raise errors.AuthenticationRequired("this call needs a bearer token")
        return caller

    def _node(self, context: grpc.ServicerContext, node_prefix: str) -> str:
        """The caller's node prefix: its token's (when it sends one) must be `node_prefix`,
        and a node with pinned certificates must present one of them (mutual TLS); a
        pinned certificate alone is enough for a node homed without a token.

        Raises AuthenticationRequired / AuthenticationFailed / PermissionDenied.
        """
        prefix = parse_prefix(node_prefix)
        caller = self._auth.caller(context)
        if caller is not None and (caller.role != accounts.ENTERPRISE or caller.name != prefix):
            raise errors.PermissionDenied(f"account {caller.name} may not sync node {prefix}")
        pinned = self.mirror.pins(prefix)
        try:
            pins.check(prefix, pinned, peer_fingerprint(context), caller is not None)
        except errors.IdnodeError as refusal:
            if pinned:
                self._note_refusal(prefix, str(refusal))
            raise
        return prefix

    # Calls ----------------------------------------------------------------------

    def add_node(
        self, request: sync_pb2.AddNodeRequest, context: grpc.ServicerContext
    ) -> sync_pb2.AddNodeResponse:
        admin = self._caller(context)
        accounts.require_admin(admin, "home node prefixes")
        self._check_pinnable(request.client_cert_sha256)
        prefix, token = self.mirror.add_node(
            request.node_prefix,
            request.sites,
            request.token,
            pins=request.client_cert_sha256,
            certificate_only=request.certificate_only,
        )
        reply = sync_pb2.AddNodeResponse(
            node_prefix=prefix, token=token, client_cert_sha256=self.mirror.pins(prefix)
        )
        audit.record(
            "node.add", admin.name, node=prefix, token_issued=bool(token),
            pins=",".join(reply.client_cert_sha256), source=context.peer(),
        )  # fmt: skip
        return reply

    def pin_node(
        self, request: sync_pb2.PinNodeRequest, context: grpc.ServicerContext
    ) -> sync_pb2.PinNodeResponse:
        admin = self._caller(context)
        accounts.require_admin(admin, "pin node certificates")
        self._check_pinnable(request.client_cert_sha256)
        reply = self.mirror.pin(request.node_prefix, request.client_cert_sha256, request.add)
        with self._refusals_lock:
            self._refusals.pop(reply.node_prefix, None)
        audit.record(
            "node.pin", admin.name, node=reply.node_prefix,
            previous=",".join(reply.previous), pins=",".join(reply.client_cert_sha256),
            source=context.peer(),
        )  # fmt: skip
        return reply

    def hello(
        self, request: sync_pb2.HelloRequest, context: grpc.ServicerContext
    ) -> sync_pb2.HelloResponse:
        prefix = self._node(context, request.node_prefix)
        node_id = check_node_id(request.node_id)
        with self._refusing(prefix):
            hello = self.mirror.hello(
                prefix, request.log_id, request.sites, node_id, request.public_key
            )
        if hello.registered:
            log.info(
                "node identity registered",
                extra={"node": prefix, "node_id": node_id, "public_key": request.public_key.hex()},
            )
        return sync_pb2.HelloResponse(acked_sequence=hello.acked_sequence)

    def push(
        self, request: sync_pb2.PushRequest, context: grpc.ServicerContext
    ) -> sync_pb2.PushResponse:
        prefix = self._node(context, request.node_prefix)
        node_id = check_node_id(request.node_id)
        with self._refusing(prefix):
            return self.mirror.apply(
                prefix, request.log_id, request.entries, node_id, request.checkpoints
            )

    def snapshot(
        self, chunks: Iterator[sync_pb2.SnapshotChunk], context: grpc.ServicerContext
    ) -> sync_pb2.PushResponse:
        first = next(chunks, None)
        if first is None:
            raise errors.InvalidRequest("an empty snapshot")
        prefix = self._node(context, first.node_prefix)
        node_id = check_node_id(first.node_id)
        with self._refusing(prefix):
            self.mirror.begin_snapshot(
                prefix, first.log_id, first.sequence, node_id, first.checkpoint
            )
        self.mirror.snapshot_chunk(prefix, first)
        for chunk in chunks:
            if chunk.node_prefix and parse_prefix(chunk.node_prefix) != prefix:
                raise errors.PermissionDenied("a snapshot covers one node")
            self.mirror.snapshot_chunk(prefix, chunk)
        head = first.checkpoint.head_hash if first.sequence else chain.GENESIS
        acked = self.mirror.finish_snapshot(prefix, first.log_id, first.sequence, head)
        log.info("snapshot applied", extra={"node": prefix, "sequence": acked})
        return sync_pb2.PushResponse(acked_sequence=acked)

    def report_stats(
        self, request: sync_pb2.StatsReport, context: grpc.ServicerContext
    ) -> sync_pb2.StatsAck:
        self.mirror.record_stats(self._node(context, request.node_prefix), request)
        return sync_pb2.StatsAck()

    def locate(
        self, request: sync_pb2.LocateRequest, context: grpc.ServicerContext
    ) -> sync_pb2.LocateResponse:
        home = self.mirror.home(request.prefix)
        if home is None:
            raise errors.PrefixNotFound(f"no node is homed for prefix {request.prefix}")
        reply = sync_pb2.LocateResponse(code=home.code, prefix=home.prefix, sites=home.sites)
        reply.ttl = DELEGATION_TTL_SECONDS if home.code == 303 else NODE_REFERRAL_TTL_SECONDS
        if self.in_takeover(home):
            reply.takeover = True
            reply.ttl = TAKEOVER_TTL_SECONDS
            del reply.sites[:]
            reply.sites.extend(self.own_sites)
        return reply

    def list_nodes(
        self, request: sync_pb2.ListNodesRequest, context: grpc.ServicerContext
    ) -> sync_pb2.ListNodesResponse:
        accounts.require_admin(self._caller(context), "list nodes")
        reply = sync_pb2.ListNodesResponse()
        for state in self.mirror.nodes():
            node = reply.nodes.add()
            node.CopyFrom(state)
            node.reachable = self.prober.reachable(state.node_prefix)
            node.takeover = self.in_takeover(Home(302, state.node_prefix, state.node_prefix, ()))
            node.mirrored_records = self.mirror.mirrored_count(state.node_prefix)
            node.refusal = self._refusals.get(state.node_prefix, "")
        return reply

    def reset_node(
        self, request: sync_pb2.ResetNodeRequest, context: grpc.ServicerContext
    ) -> sync_pb2.ResetNodeResponse:
        admin = self._caller(context)
        accounts.require_admin(admin, "reset nodes")
        reply = self.mirror.reset(parse_prefix(request.node_prefix))
        audit.record("node.reset", admin.name, node=reply.node_prefix, source=context.peer())
        with self._refusals_lock:
            self._refusals.pop(reply.node_prefix, None)
        log.warning(
            "node reset by the administrator: the next node to sync registers its identity",
            extra={
                "node": reply.node_prefix,
                "previous_node_id": reply.previous_node_id,
                "previous_acked_sequence": reply.previous_acked_sequence,
            },
        )
        return reply

    def _check_pinnable(self, pinned: Sequence[str]) -> None:
        """A pin needs handshakes that ask for client certificates, else no node meets it."""
        if pinned and not self.asks_client_certs:
            raise errors.InvalidRequest(
                "this top-level node does not ask for client certificates: start it with "
                "--tls-cert-file, --client-ca-file and --require-client-cert to pin them"
            )

    @contextlib.contextmanager
    def _refusing(self, node_prefix: str) -> Iterator[None]:
        """Log a refusal once per node prefix and reason (a refused node retries for as long
        as it runs), and keep it for ListNodes."""
        try:
            yield
        except errors.SyncRefused as refusal:
            self._note_refusal(node_prefix, str(refusal))
            raise

    def _note_refusal(self, node_prefix: str, why: str) -> None:
        with self._refusals_lock:
            changed = self._refusals.get(node_prefix) != why
            self._refusals[node_prefix] = why
        if changed:
            log.warning("sync refused", extra={"node": node_prefix, "reason": why})

    def in_takeover(self, home: Home) -> bool:
        """A node's own prefix is taken over while its node is unreachable."""
        return home.code == 302 and not self.prober.reachable(home.node_prefix)


def handlers(service: TopLevelService) -> list[Any]:
    """The TopLevel service's methods (the Resolver's are sync.toplevel.resolve's)."""
    top = grpc.method_handlers_generic_handler(
        TOPLEVEL,
        {
            "AddNode": unary(service.add_node, sync_pb2.AddNodeRequest),
            "Hello": unary(service.hello, sync_pb2.HelloRequest),
            "Push": unary(service.push, sync_pb2.PushRequest),
            "Snapshot": grpc.stream_unary_rpc_method_handler(
                guarded(service.snapshot),
                request_deserializer=sync_pb2.SnapshotChunk.FromString,
                response_serializer=lambda message: message.SerializeToString(),
            ),
            "ReportStats": unary(service.report_stats, sync_pb2.StatsReport),
            "Locate": unary(service.locate, sync_pb2.LocateRequest),
            "ListNodes": unary(service.list_nodes, sync_pb2.ListNodesRequest),
            "ResetNode": unary(service.reset_node, sync_pb2.ResetNodeRequest),
            "PinNode": unary(service.pin_node, sync_pb2.PinNodeRequest),
        },
    )
    return [top]
