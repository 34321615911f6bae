"""One running top-level node: its store, mirror, prober and gRPC server."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from proto import handle_pb2
from registry import accounts
from registry.store import Store, StoreOptions
from resolver.grpc_resolve import DEFAULT_MAX_RESPONSE_BYTES
from resolver.grpc_server import RESOLVER, enable_reflection, resolver_handler
from resolver.tls import CertificateSource, ClientTls, ServerTls
from sync.toplevel.health import Prober
from sync.toplevel.mirror import Mirror
from sync.toplevel.resolve import TopLevelResolver
from sync.toplevel.service import TOPLEVEL, TopLevelService, handlers

# Admits the largest legal change-log entry (a record of about 1 MiB) many times over;
# nodes bound their batches and snapshot chunks far below it (sync.batches). A
# BatchResolve reply is held to the node's own bound, DEFAULT_MAX_RESPONSE_BYTES.
MAX_MESSAGE_BYTES = 64 << 20


class TopLevelNode:
    """The reference top-level node; `start()` binds, `stop()` drains and closes the store."""

    def __init__(
        self,
        data_dir: str,
        admin_token: str | None,
        probe_interval_seconds: float = 2.0,
        probe_failures: int = 2,
        threads: int = 16,
        map_size_bytes: int = 1 << 30,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        tls: ServerTls | None = None,
        sites_tls: ClientTls | None = None,
    ) -> None:
        # Read first: unusable certificate files raise CertificateError before anything opens.
        self.tls = CertificateSource(tls) if tls is not None else None
        self.store = Store(data_dir, StoreOptions(map_size_bytes=map_size_bytes, changelog=False))
        self.created_admin_token = accounts.ensure_admin(self.store, admin_token)
        self.mirror = Mirror(self.store)
        self.prober = Prober(
            self.mirror.nodes, probe_interval_seconds, probe_failures, tls=sites_tls
        )
        asks = tls is not None and tls.require_client_cert
        self.service = TopLevelService(self.mirror, self.prober, [], asks_client_certs=asks)
        self.health = health.HealthServicer()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="toplevel"),
            handlers=[
                *handlers(self.service),
                resolver_handler(
                    TopLevelResolver(
                        self.service, sites_tls, min(max_response_bytes, max_message_bytes)
                    )
                ),
            ],
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, [TOPLEVEL, RESOLVER, health.SERVICE_NAME])

    def start(self, listen: Sequence[str]) -> list[str]:
        """Bind every HOST:PORT (port 0 picks one), start serving; returns the bound addresses."""
        bound = []
        for address in listen:
            if self.tls is None:
                port = self.server.add_insecure_port(address)
            else:
                port = self.server.add_secure_port(address, self.tls.grpc_credentials())
            if port == 0:
                raise OSError(f"cannot listen for gRPC on {address}")
            host = address.rpartition(":")[0]
            bound.append(f"{host}:{port}")
        secure = self.tls is not None
        self.service.own_sites[:] = [
            handle_pb2.Site(grpc_address=a, grpc_tls=secure) for a in bound
        ]
        self.server.start()
        for name in ("", TOPLEVEL, RESOLVER):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.prober.start()
        return bound

    def reload(self) -> None:
        """SIGHUP: read the certificate files again for new handshakes."""
        if self.tls is not None:
            self.tls.reload()

    def stop(self, grace_seconds: float = 5.0) -> None:
        self.prober.stop()
        self.server.stop(grace_seconds).wait()
        self.store.close()
