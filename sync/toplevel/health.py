"""Health probing of homed nodes: how the top-level node knows a node is unreachable.

Every `interval_seconds` the prober sends a standard gRPC health check (timeout
`timeout_seconds`, 1 s) to the first gRPC site of each homed node. After
`failures_to_down` consecutive failures the node is down and the top-level node
takes over its resolution from the mirror; one successful probe ends the
takeover. A node never probed yet counts as reachable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import handle_pb2, sync_pb2
from resolver.tls import ClientTls, SiteStubs

log = logging.getLogger(__name__)

Probe = Callable[[handle_pb2.Site, float], bool]
# Channels kept open at once: every homed node's, unless there are more nodes than this.
MAX_PROBE_CHANNELS = 4096


class GrpcHealthProbe:
    """True when the gRPC server of a site answers SERVING; one channel per site (TLS,
    verified against `tls`'s CAs, for a site that announces it), kept while the site is
    among those `retain` is told of."""

    def __init__(self, tls: ClientTls | None = None) -> None:
        self._stubs = SiteStubs(health_pb2_grpc.HealthStub, tls, MAX_PROBE_CHANNELS)

    def __call__(self, site: handle_pb2.Site, timeout_seconds: float) -> bool:
        stub = self._stubs.get(site.grpc_address, site.grpc_tls)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout_seconds)
        except (grpc.RpcError, ValueError):  # ValueError: its channel was closed meanwhile
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def retain(self, probed: set[tuple[str, bool]]) -> None:
        """Close the channels to sites no longer probed (a node moved or left)."""
        self._stubs.retain(probed)

    def __len__(self) -> int:
        return len(self._stubs)  # channels open

    def close(self) -> None:
        self._stubs.close()


class Prober:
    """Tracks which homed nodes answer their health checks."""

    def __init__(
        self,
        nodes: Callable[[], list[sync_pb2.NodeStatus]],
        interval_seconds: float = 2.0,
        failures_to_down: int = 2,
        probe: Probe | None = None,
        timeout_seconds: float = 1.0,
        tls: ClientTls | None = None,
    ) -> None:
        self._nodes = nodes
        self.timeout_seconds = timeout_seconds  # a busy node is slow, not down
        self.interval_seconds = interval_seconds
        self.failures_to_down = failures_to_down
        own = GrpcHealthProbe(tls)  # cheap: channels are opened on first use
        self._own_probe = own if probe is None else None
        self._probe: Probe = probe or own
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def reachable(self, node_prefix: str) -> bool:
        with self._lock:
            return self._failures.get(node_prefix, 0) < self.failures_to_down

    def probe_once(self) -> None:
        """Probe every homed node with a site once; forget nodes and sites gone since."""
        probed: set[tuple[str, bool]] = set()
        homed: set[str] = set()
        for node in self._nodes():
            homed.add(node.node_prefix)
            if not node.sites or not node.sites[0].grpc_address:
                continue
            probed.add((node.sites[0].grpc_address, node.sites[0].grpc_tls))
            up = self._probe(node.sites[0], self.timeout_seconds)
            with self._lock:
                before = self._failures.get(node.node_prefix, 0)
                after = 0 if up else before + 1
                self._failures[node.node_prefix] = after
            if before < self.failures_to_down <= after:
                log.warning("node unreachable: takeover starts", extra={"node": node.node_prefix})
            elif before >= self.failures_to_down and after == 0:
                log.info("node reachable again: takeover ends", extra={"node": node.node_prefix})
        with self._lock:
            for gone in self._failures.keys() - homed:
                del self._failures[gone]
        if self._own_probe is not None:
            self._own_probe.retain(probed)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        if self._own_probe is not None:
            self._own_probe.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.probe_once()
            except Exception:  # the prober must outlive a bad node entry or store hiccup
                log.exception("health probing failed")
