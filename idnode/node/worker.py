"""A worker process: opens the store itself, serves gRPC, DNS and HTTP on the shared ports.

Workers are spawned (a fresh interpreter, never a fork of an open LMDB
environment) with PROMETHEUS_MULTIPROC_DIR already in their environment, so
importing the metrics at module level here is safe.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from multiprocessing.connection import Connection

import metrics
from idnode import logs
from idnode.config import Config
from idnode.node import replicas, upstream
from idnode.node.parts import (
    Listen,
    certificate_source,
    dns_options,
    follow_tls,
    http_options,
    open_store,
)
from metrics.grpc_interceptor import MetricsInterceptor
from proto import handle_pb2
from registry.errors import IdnodeError
from registry.registry import Registry
from resolver.auth import UsageRecorder
from resolver.dns import DnsServer
from resolver.follow import ChangeFollower, ChangeListener
from resolver.grpc_auth import Authenticator
from resolver.grpc_follow import ReferralFollower
from resolver.grpc_registry import RegistryService
from resolver.grpc_resolve import ResolverService
from resolver.grpc_server import (
    REGISTRY,
    RESOLVER,
    GrpcServer,
    registry_handler,
    resolution_timing,
    resolver_handler,
)
from resolver.http import HttpApp, HttpServer
from resolver.readonly import SequenceGate
from sync.replica.source import SERVICE as REPLICATION
from sync.replica.source import ReplicationService

log = logging.getLogger("idnode.worker")
PR_SET_PDEATHSIG = 1
M_MMAP_THRESHOLD = -3  # glibc mallopt()
LARGE_ALLOCATION_BYTES = 128 << 10
STORE_PROBE_SECONDS = 2.0
HEALTH_PROBE_SECONDS = 0.5  # how often a replica's lag and state are looked at


class Worker:
    """Everything one worker process runs, built from the config in that process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = open_store(config)
        self.registry = Registry(self.store, config.node_prefix)
        self.follower = ChangeFollower(self.store)
        self.grpc_tls = certificate_source(config, "grpc")
        self.http_tls = certificate_source(config, "http")
        self.referrer = upstream.referrer(config)
        auth = Authenticator(self.store)
        self.follower.subscribe(_forget_tokens_on_change(auth))
        self._usage = UsageRecorder(auth, self.store)
        self._draining = threading.Event()
        self.replica = replicas.face(config, self.store)  # None on a primary
        self.replica_health = replicas.Health(config)
        self.gate = SequenceGate(
            self.follower, config.min_sequence_wait_seconds, replica=self.replica is not None
        )
        self.replication = ReplicationService(
            self.store, auth, config.node_prefix, config.http_site, stopping=self._draining
        )
        self.resolver = ResolverService(
            self.registry,
            self.follower,
            auth,
            config.cache_entries,
            config.negative_cache_entries,
            referrer=self.referrer,
            cache_bytes=config.cache_bytes,
            negative_cache_bytes=config.negative_cache_bytes,
            max_response_bytes=config.grpc_max_message_bytes,
            referrals=ReferralFollower(
                config.follow_deadline_seconds,
                config.follow_max_concurrent,
                tls=follow_tls(config),
            ),
            gate=self.gate,
        )
        self.grpc = GrpcServer(
            [
                resolver_handler(self.resolver),
                registry_handler(
                    RegistryService(
                        self.registry,
                        auth,
                        list_page_bytes=config.list_page_bytes,
                        replica=self.replica,
                    )
                ),
                self.replication.handler(),
            ],
            [RESOLVER, REGISTRY, REPLICATION],
            threads=config.grpc_threads,
            max_message_bytes=config.grpc_max_message_bytes,
            interceptors=[MetricsInterceptor(also_timed=resolution_timing())],
        )
        self.dns: DnsServer | None = None
        self.http: HttpServer | None = None
        self._http_app: HttpApp | None = None
        self._auth = auth
        self._flusher = metrics.start_flusher()
        self._store_ok = True
        self._serving = False

    def start(self, listen: Listen) -> None:
        """Bind and serve; health turns SERVING only once everything listens."""
        self.grpc.start(listen.grpc, self.grpc_tls)
        if listen.dns:
            self.dns = DnsServer(
                self.store, self.config.node_prefix, self.follower, dns_options(self.config)
            )
            self.dns.start(listen.dns)
        if listen.http:
            options = http_options(self.config)
            self.replication.http_site = replicas.http_site(self.config, listen.http)
            self._http_app = HttpApp(
                self.registry,
                self.follower,
                self._auth,
                self.resolver.answer,
                options,
                replica=self.replica,
                gate=self.gate,
                healthy=lambda: self._serving,
            )
            context = self.http_tls.ssl_context() if self.http_tls is not None else None
            self.http = HttpServer(self._http_app, options, ssl_context=context)
            self.http.start(listen.http)
        self._set_serving(self.replica_health.serving())
        if self.replica is None:  # a replica's accounts are its primary's, replaced whole
            self._usage.start()
        threading.Thread(target=self._watch_health, name="health", daemon=True).start()

    def _watch_health(self) -> None:
        """NOT_SERVING while the store cannot be read, or on a replica while it is copying,
        its follower is silent or its lag is above max_lag_seconds; SERVING again after."""
        store_checked = time.monotonic()
        while not self._draining.wait(HEALTH_PROBE_SECONDS):
            if time.monotonic() - store_checked >= STORE_PROBE_SECONDS:
                store_checked = time.monotonic()
                healthy = self._store_usable()
                if healthy != self._store_ok:
                    self._store_ok = healthy
                    log.error("store %s", "usable again" if healthy else "unusable: NOT_SERVING")
            replica_ok = self.replica_health.serving()
            if replica_ok != self._serving and self._store_ok and not self._draining.is_set():
                reason = self.replica_health.reason
                log.warning(
                    "replica %s", "serving again" if replica_ok else f"NOT_SERVING: {reason}"
                )
            self._set_serving(self._store_ok and replica_ok)

    def _store_usable(self) -> bool:
        try:
            with self.store.read() as txn:
                self.store.last_sequence(txn)
        except IdnodeError:
            return False
        return True

    def _set_serving(self, serving: bool) -> None:
        if serving == self._serving or self._draining.is_set():
            return
        self._serving = serving
        self.grpc.set_serving(serving)

    def reload(self, config: Config) -> None:
        """Apply what can change without a restart: log settings, DNS rate limits, and the
        TLS files read again (new handshakes get a new certificate, open connections stay)."""
        logs.setup(config.log_level, config.log_format)
        for source in (self.grpc_tls, self.http_tls):
            if source is not None:
                source.reload()
        if self.referrer is not None:
            self.referrer.renew_channel()  # a new client certificate for the upstream
        if self.dns is not None:
            self.dns.handler.set_rate_limit(
                config.dns.rrl_responses_per_second, config.dns.rrl_slip
            )
        self.config = config

    def stop(self) -> None:
        """Drain: NOT_SERVING first, keep answering for the drain period so balancers move
        away, then stop accepting and finish in-flight calls within the grace period."""
        self._draining.set()
        self._serving = False
        self.grpc.set_serving(False)
        time.sleep(self.config.shutdown_drain_seconds)
        if self.dns is not None:
            self.dns.stop()
        if self.http is not None:
            self.http.stop()  # finishes the requests in flight within the grace period
        if self._http_app is not None:
            self._http_app.close()
        self.grpc.stop(self.config.shutdown_grace_seconds)
        if self.replica is None:
            self._usage.stop()
        self._flusher.set()
        metrics.flush()
        self.store.close()


def _forget_tokens_on_change(auth: Authenticator) -> ChangeListener:
    """A credential changed (rotated, revoked): cached tokens are looked up again."""

    def listen(entry: handle_pb2.ChangeEntry | None) -> None:
        if entry is None or entry.operation == handle_pb2.ChangeEntry.ACCOUNT_PUT:
            auth.forget()

    return listen


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the master dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the master's SIGTERM on exit still stops the worker
    if os.getppid() == 1:  # the master died before the request took effect
        raise SystemExit(0)


def _return_large_allocations() -> None:
    """Have glibc map every allocation over 128 KiB on its own and unmap it when freed.

    By default glibc raises that threshold to the largest block freed so far (up to
    32 MiB), after which a request near the message limit is served from the heap
    and its memory stays with the worker: a few 30 MB requests, even refused ones,
    left a worker ~150 MB larger for good. A fixed threshold gives it back.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES)
    except (OSError, AttributeError):
        return  # not glibc: its allocator decides


def run(config: Config, listen: Listen, control: Connection) -> None:
    """Worker process entry point (spawned, never forked from an open store).

    `control` is the master's pipe: the worker reports ("ready"|"failed", pid,
    reason) once, then receives ("reload", Config) messages.
    """
    _die_with_parent()
    _return_large_allocations()
    logs.setup(config.log_level, config.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master decides when to stop
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads come through the control pipe
    try:
        worker = Worker(config)
        worker.start(listen)
    except Exception as error:
        log.exception("worker failed to start")
        control.send(("failed", os.getpid(), str(error)))
        raise SystemExit(1) from error
    metrics.flush()  # this worker's gauges are there from the first scrape after SERVING
    control.send(("ready", os.getpid(), ""))
    threading.Thread(target=_obey, args=(worker, control), name="control", daemon=True).start()
    stop.wait()
    worker.stop()


def _obey(worker: Worker, control: Connection) -> None:
    while True:
        try:
            command, argument = control.recv()
        except (EOFError, OSError):
            return
        if command == "reload":
            worker.reload(argument)
