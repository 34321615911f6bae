"""`idnode toplevel`: composition of the reference national top-level node."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from idnode import __version__, logs
from idnode.config import join_host_port, split_host_port
from registry.crypto.certificates import CertificateError
from registry.errors import IdnodeError
from resolver.tls import ClientTls, ServerTls, is_loopback

log = logging.getLogger("idnode.toplevel")


@dataclass(frozen=True)
class TopLevelSettings:
    """What `idnode toplevel` runs with (from its command line)."""

    data_dir: str
    grpc_listen: Sequence[str]
    probe_interval_seconds: float = 2.0
    probe_failures: int = 2
    log_level: str = "info"
    log_format: str = "text"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    client_ca_file: str = ""  # verify nodes' client certificates against these CAs
    require_client_cert: bool = False
    sites_ca_file: str = ""  # CAs of the nodes' TLS sites (probes, followed referrals)
    metrics_listen: str = ""  # HOST:PORT for /metrics; "" serves none

    def server_tls(self) -> ServerTls | None:
        if not self.tls_cert_file:
            return None
        return ServerTls(
            self.tls_cert_file, self.tls_key_file, self.client_ca_file, self.require_client_cert
        )


def main(settings: TopLevelSettings) -> int:
    """Run the top-level node until SIGTERM or SIGINT; prints one JSON ready line."""
    from sync.toplevel.server import TopLevelNode

    logs.setup(settings.log_level, settings.log_format)
    if settings.require_client_cert and not settings.client_ca_file:
        raise SystemExit("idnode: --require-client-cert needs --client-ca-file")
    try:
        node = TopLevelNode(
            settings.data_dir,
            os.environ.get("IDNODE_ADMIN_TOKEN") or None,
            probe_interval_seconds=settings.probe_interval_seconds,
            probe_failures=settings.probe_failures,
            tls=settings.server_tls(),
            sites_tls=ClientTls(ca_file=settings.sites_ca_file),
        )
    except CertificateError as error:
        raise SystemExit(f"idnode: {error}") from None
    except IdnodeError as error:
        raise SystemExit(f"idnode: cannot use data dir {settings.data_dir}: {error}") from None
    if node.created_admin_token:
        print(
            "administrator token (shown once; keep it, it is stored only hashed):\n"
            f"  {node.created_admin_token}",
            file=sys.stderr,
            flush=True,
        )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    reloading = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: reloading.set())
    try:
        bound = node.start(list(settings.grpc_listen))
    except OSError as error:
        node.stop(0)
        raise SystemExit(f"idnode: {error}") from None
    if node.tls is None:
        _warn_plain(bound)
    ready: dict[str, object] = {
        "event": "ready", "role": "toplevel", "version": __version__, "pid": os.getpid()
    }  # fmt: skip
    ready["grpc"] = bound
    if settings.metrics_listen:
        try:
            ready["metrics"] = _serve_metrics(settings.metrics_listen)
        except (OSError, ValueError) as error:
            node.stop(0)
            where = settings.metrics_listen
            raise SystemExit(f"idnode: cannot serve /metrics on {where}: {error}") from None
    print(json.dumps(ready), flush=True)
    while not stopping.wait(0.5):
        if reloading.is_set():  # SIGHUP: new handshakes get the certificate files' pair
            reloading.clear()
            node.reload()
    node.stop()
    if settings.metrics_listen:
        from metrics import exposition

        exposition.stop_serving()
    return 0


def _serve_metrics(listen: str) -> str:
    """/metrics of this one process (the top-level node has no workers); returns the bound
    HOST:PORT. The series of its own failures exist at 0 from the first scrape."""
    import metrics
    from metrics import exposition

    exposition.set_build_info(__version__)
    metrics.declare_guard_series()
    metrics.start_flusher()
    host, port = exposition.serve_metrics(listen)
    return join_host_port(host, port)


def _warn_plain(bound: Sequence[str]) -> None:
    for address in bound:
        if not is_loopback(split_host_port(address)[0]):
            log.warning(
                "gRPC listens on %s without TLS: node and administrator tokens cross the "
                "network in clear text (--tls-cert-file/--tls-key-file, docs/security.md)",
                address,
            )
