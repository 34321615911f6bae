"""The `/metrics` endpoint, and multiprocess mode switched on in the right order.

Call order for the composition root.

Master process (the one that starts the workers and owns the metrics port):

1. `prepare_multiprocess_dir(path)` first, before any worker starts and before
   any recorder, servicer or metric child is built (importing modules is fine;
   recording is not: it raises RuntimeError if something was recorded already).
   Use a directory of its own, ideally on tmpfs (`/run/idnode/metrics`); stale
   files of a previous run are removed. It sets PROMETHEUS_MULTIPROC_DIR, which
   the workers inherit.
2. `set_build_info(version)` and `metrics.start_flusher()`, so the master's own
   build info and CPU/memory are part of the node's numbers.
3. `serve_metrics(config.metrics_listen)`; it returns the bound `(host, port)`.
4. Start the workers with the `spawn` start method (a forked child would share
   the master's open metric files and prometheus_client state).
5. Each time a worker is reaped: `worker_exited(pid)`, before starting its
   replacement. Its counters keep adding up; its gauges disappear.
6. At shutdown, after the workers are gone: `stop_serving()`, then exit (the
   flusher flushes a last time at interpreter exit).

Worker process: build the servers, call `metrics.start_flusher()` once, and on
a graceful exit call `metrics.flush()` after the last request (the flusher's
exit hook does so on a normal interpreter exit; `os._exit` or SIGKILL lose at
most the last flush interval of counts).

Single process (no workers): skip step 1 and 4-5; `serve_metrics` then serves
the default registry, including the client library's process and GC metrics.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import socketserver
import ssl
import threading
from typing import Any

import prometheus_client.values
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

import metrics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format every Prometheus understands; all our names are plain
# ASCII, so the client library's output is the same in its newer format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The files prometheus_client writes: counter_<pid>.db, gauge_<mode>_<pid>.db, ...
_METRIC_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def prepare_multiprocess_dir(path: str) -> None:
    """Switch this process and its future children to multiprocess metrics in `path`.

    Creates `path` if needed and deletes the metric files a previous run left
    there (only those: a mistaken path loses no other data). Raises
    RuntimeError if this process is already in multiprocess mode or has
    recorded into a labelled metric, OSError if `path` cannot be prepared.
    """
    if metrics.is_multiprocess():
        raise RuntimeError(
            f"metrics are already in multiprocess mode ({MULTIPROC_ENV}="
            f"{os.environ.get(MULTIPROC_ENV)!r}); unset it in the master's environment "
            "and call prepare_multiprocess_dir once"
        )
    directory = os.path.abspath(path)
    os.makedirs(directory, exist_ok=True)
    with os.scandir(directory) as entries:
        for entry in entries:
            if _METRIC_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
    os.environ[MULTIPROC_ENV] = directory
    # prometheus_client chose its value class when it was imported; choose again
    # and re-create the values of unlabelled metrics declared since then.
    previous = prometheus_client.values.ValueClass
    prometheus_client.values.ValueClass = prometheus_client.values.get_value_class()  # type: ignore[no-untyped-call]
    try:
        metrics._rebind_values()
    except RuntimeError:
        prometheus_client.values.ValueClass = previous
        del os.environ[MULTIPROC_ENV]
        raise


def multiprocess_dir() -> str | None:
    """The directory the scrape aggregates, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def worker_exited(pid: int) -> None:
    """Forget the gauges of the dead worker `pid`; its counters stay in the sums."""
    directory = multiprocess_dir()
    if directory is not None:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def set_build_info(version: str) -> None:
    """Export `idnode_build_info{version}` = 1 from this process."""
    metrics.BUILD_INFO.labels(version).set(1)


def counter_total(family: str) -> int:
    """The sum over every process and label of the counter `family` (named without
    `_total`), as a scrape would show it; 0 outside multiprocess mode."""
    directory = multiprocess_dir()
    if directory is None:
        return 0
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    total = 0.0
    for found in registry.collect():
        if found.name == family:
            total += sum(s.value for s in found.samples if s.name.endswith("_total"))
    return int(total)


def scrape_registry() -> CollectorRegistry:
    """What `/metrics` shows: every process's files in multiprocess mode, else this process.

    Chosen at every scrape (a collector is cheap to build), so the endpoint is
    right even if it was started before `prepare_multiprocess_dir`.
    """
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /metrics (text exposition 0.0.4), /healthz (liveness); nothing else."""

    server: _MetricsServer

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/metrics":
            try:
                body = generate_latest(scrape_registry())
            except Exception as error:  # a corrupt metric file must not kill the endpoint
                self._reply(500, f"collecting metrics failed: {error}\n".encode())
                return
            self._reply(200, body, CONTENT_TYPE)
        elif path == "/healthz":
            self._reply(200, b"ok\n")
        elif path == "/":
            self._reply(200, b"idnode metrics: /metrics, liveness: /healthz\n")
        else:
            self._reply(404, b"not found: try /metrics\n")

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """No log line per scrape."""


TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0


class _MetricsServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], family: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.address_family = family
        self._ssl_context = ssl_context
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """With TLS, the handshake happens here, in the connection's own thread, bounded in
        time: a client that never finishes it holds no one else up."""
        if self._ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(TLS_HANDSHAKE_TIMEOUT_SECONDS)
        try:
            wrapped = self._ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # not TLS, a certificate the client refused, or too slow
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can block on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


_servers: list[_MetricsServer] = []
_servers_lock = threading.Lock()


def serve_metrics(listen: str, ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
    """Serve `/metrics` on `listen` (`HOST:PORT`, `[V6]:PORT`, port 0 for any) in a thread;
    over TLS with `ssl_context`.

    Returns the bound (host, port). Raises ValueError for a malformed address,
    OSError if it cannot be bound.
    """
    host, port = split_host_port(listen)
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    server = _MetricsServer((str(sockaddr[0]), int(sockaddr[1])), family, ssl_context)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    with _servers_lock:
        _servers.append(server)
    return server.server_name, server.server_port


def stop_serving() -> None:
    """Stop every server `serve_metrics` started and close their sockets."""
    with _servers_lock:
        servers = list(_servers)
        _servers.clear()
    for server in servers:
        server.shutdown()
        server.server_close()


def split_host_port(address: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` into its parts. Raises ValueError naming what is wrong."""
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
    else:
        host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not HOST:PORT (IPv6 as [ADDR]:PORT)")
    return host, int(port)
