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
from resolver.tls import ClientTls, channel_credentials, open_channel

log = logging.getLogger(__name__)

Probe = Callable[[handle_pb2.Site, float], bool]


class GrpcHealthProbe:
    """True when the gRPC server of a site answers SERVING; one channel per site (TLS,
    verified against `tls`'s CAs, for a site that announces it)."""

    def __init__(self, tls: ClientTls | None = None) -> None:
        self._tls = tls or ClientTls()
        self._credentials = channel_credentials(self._tls)
        self._channels: dict[tuple[str, bool], grpc.Channel] = {}

    def __call__(self, site: handle_pb2.Site, timeout_seconds: float) -> bool:
        key = (site.grpc_address, site.grpc_tls)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = open_channel(
                site.grpc_address,
                self._tls if site.grpc_tls else None,
                credentials=self._credentials,
            )
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_seconds
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


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
        """Probe every homed node with a site once."""
        for node in self._nodes():
            if not node.sites or not node.sites[0].grpc_address:
                continue
            up = self._probe(node.sites[0], self.timeout_seconds)
            with self._lock:
                before = self._failures.get(node.node_prefix, 0)
                after = 0 if up else before + 1
                self._failures[node.node_prefix] = after
            if before < self.failures_to_down <= after:
                log.warning("node unreachable: takeover starts", extra={"node": node.node_prefix})
            elif before >= self.failures_to_down and after == 0:
                log.info("node reachable again: takeover ends", extra={"node": node.node_prefix})

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
