"""`idnode serve`: the master process that prepares the store and supervises the workers.

The master never serves requests. It initialises the data dir, chooses the
ports, spawns one worker per core (each opens LMDB itself and binds the shared
ports with SO_REUSEPORT), serves /metrics for all of them, runs the single
instances (DNS NOTIFY, upstream sync), restarts a worker that dies, and on
SIGTERM drains the workers and exits 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from idnode import __version__, logs
from idnode.config import Config, ConfigError, join_host_port, split_host_port
from idnode.node import parts, systemd
from idnode.node.bootstrap import Service, check_data_dir
from idnode.node.parts import Listen
from registry import storefile
from registry.errors import StoreError
from registry.store import Store

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger("idnode.master")

READY_TIMEOUT_SECONDS = 60.0
# What SIGHUP applies to a running node; any other changed key needs a restart.
LIVE_KEYS = frozenset(
    {
        "log_level",
        "log_format",
        "shutdown_drain_seconds",
        "shutdown_grace_seconds",
        "dns.rrl_responses_per_second",
        "dns.rrl_slip",
    }
)
RESTART_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
SHARED_MEMORY_DIR = "/dev/shm"
NODE_FILE = "node.json"


def main(config: Config, reload: Callable[[], Config] | None = None) -> int:
    """Run the node until SIGTERM or SIGINT; SIGHUP calls `reload` and applies what it can.

    Returns the exit code.
    """
    logs.setup(config.log_level, config.log_format)
    check_data_dir(config)  # before anything below creates the directory
    _prepare_data_dir(config.data_dir)
    return Master(config, reload).run()


def _metrics_dir(data_dir: str, run_dir: str) -> str:
    """Where the processes keep their metric files: in memory, not beside the store.

    prometheus_client grows them as sparse files written through a mapping, so on a full
    disk the first new sample kills the process with SIGBUS: a node whose data disk fills
    must go on resolving and reporting that it is full. systemd's RuntimeDirectory= (a
    private tmpfs) first, then a directory of our own in /dev/shm, else the run dir.
    """
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return os.path.join(runtime, "metrics")
    if not os.path.isdir(SHARED_MEMORY_DIR):
        return os.path.join(run_dir, "metrics")
    digest = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]
    path = os.path.join(SHARED_MEMORY_DIR, f"idnode-{os.geteuid()}-{digest}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, storefile.DIR_MODE)
    found = os.lstat(path)  # /dev/shm is shared: the directory must be ours and private
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        raise SystemExit(f"idnode: {path} exists and is not a directory of this user")
    os.chmod(path, storefile.DIR_MODE)
    return path


def _prepare_data_dir(data_dir: str) -> None:
    """Create the data dir (private) and its run dir; one line naming the path and the
    cause when that fails, never a traceback."""
    run_dir = os.path.join(data_dir, "run")
    try:
        storefile.make_data_dir(data_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir, mode=storefile.DIR_MODE)
        # Before any worker starts or anything records (importing metrics is fine).
        from metrics.exposition import prepare_multiprocess_dir

        prepare_multiprocess_dir(_metrics_dir(data_dir, run_dir))
    except StoreError as error:  # its message names the data dir
        raise SystemExit(f"idnode: {error}") from None
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise SystemExit(
            f"idnode: cannot use data dir {data_dir}: {error.strerror or error}{where}"
        ) from None


class Master:
    def __init__(self, config: Config, reload: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.stopping = threading.Event()
        self.reloading = threading.Event()
        self._reload = reload
        self.workers: dict[int, BaseProcess] = {}
        self.controls: dict[int, Connection] = {}
        self._reserved: list[socket.socket] = []
        self._context = multiprocessing.get_context("spawn")
        self._singletons: list[Service] = []
        self._reloads: list[Callable[[], object]] = []

    def run(self) -> int:
        from idnode.node import bootstrap

        config = self.config
        log.info(
            "starting",
            extra={
                "version": __version__,
                "node_prefix": config.node_prefix,
                "data_dir": config.data_dir,
                "workers": config.worker_count,
                "grpc_listen": ",".join(config.grpc_listen),
                "dns_listen": ",".join(config.dns_listen),
                "http_listen": ",".join(config.http_listen),
                "zone": config.dns.zone,
                "metrics_listen": config.metrics_listen,
                "durable": config.durable,
                "upstream": config.upstream or "none",
                "replica_of": config.replica_of or "none",
            },
        )
        for listener in ("grpc", "http", "metrics"):  # unusable files stop start-up here
            parts.certificate_source(config, listener, measured=False)
        store = bootstrap.initialise(self.config)
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        if config.replica_of and not self._follow(store):
            store.close()
            return 0  # stopped while copying the primary
        config = self.config
        if config.dns_listen:  # before any worker answers: the serial never goes back
            from idnode.node.parts import dns_options
            from resolver.dns import begin_serial_epoch

            begin_serial_epoch(store, dns_options(config))
        listen = self._choose_ports()
        parts.warn_plain_listeners(config, listen)
        signal.signal(signal.SIGHUP, lambda *_: self.reloading.set())
        try:
            # All start at once (each opens the store and binds by itself), then all must be ready.
            for slot in range(self.config.worker_count):
                self._spawn(slot, listen)
            for slot, process in self.workers.items():
                self._await_ready(slot, process, self.controls[slot])
        except RuntimeError as error:
            log.error("start-up failed: %s", error)
            systemd.notify(f"STATUS=start-up failed: {error}")
            self._stop_workers()
            return 1
        for reserved in self._reserved:
            reserved.close()
        metrics_address = self._start_singletons(store, listen)
        ready = {
            "event": "ready",
            "version": __version__,
            "pid": os.getpid(),
            "workers": len(self.workers),
            "grpc": list(listen.grpc),
            "dns": list(listen.dns),
            "http": list(listen.http),
            "metrics": metrics_address,
            "metrics_dir": os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""),
            "zone": self.config.dns.zone,
            "node_prefix": self.config.node_prefix,
            "replica_of": self.config.replica_of,
        }
        print(json.dumps(ready), flush=True)
        _write_run_file(
            node_file_path(self.config.data_dir),
            {**ready, "upstream": "" if config.replica_of else self.config.upstream},
        )
        log.info(
            "node ready",
            extra={
                "grpc": ",".join(listen.grpc),
                "dns": ",".join(listen.dns),
                "http": ",".join(listen.http),
            },
        )
        systemd.ready(f"serving with {len(self.workers)} workers")
        self._supervise(listen)
        systemd.stopping()
        log.info("stopping: draining workers")
        self._stop_workers()
        for singleton in reversed(self._singletons):
            singleton.stop()
        store.close()
        with contextlib.suppress(OSError):
            os.unlink(node_file_path(self.config.data_dir))
        log.info("stopped")
        return 0

    # Ports ------------------------------------------------------------------

    def _choose_ports(self) -> Listen:
        grpc = tuple(self._reserve(a, socket.SOCK_STREAM) for a in self.config.grpc_listen)
        dns: list[str] = []
        for address in self.config.dns_listen:
            chosen = self._reserve(address, socket.SOCK_STREAM)
            host, port = split_host_port(chosen)
            dns.append(self._same_udp_port(host, port, address))
        http = tuple(self._reserve(a, socket.SOCK_STREAM) for a in self.config.http_listen)
        return Listen(grpc=grpc, dns=tuple(dns), http=http)

    def _reserve(self, address: str, kind: socket.SocketKind) -> str:
        """Turn port 0 into a concrete port every worker can bind with SO_REUSEPORT."""
        host, port = split_host_port(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            raise SystemExit(f"cannot listen on {address}: {error.strerror}") from None
        self._reserved.append(sock)  # held, not listening, until the workers have bound
        return join_host_port(host, sock.getsockname()[1])

    @staticmethod
    def _same_udp_port(host: str, port: int, address: str) -> str:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise SystemExit(f"cannot listen for DNS on {address} (UDP): {error}") from None
        return join_host_port(host, port)

    # Workers ----------------------------------------------------------------

    def _spawn(self, slot: int, listen: Listen) -> None:
        from idnode.node import worker

        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker.run, args=(self.config, listen, child), name=f"idnode-worker-{slot}"
        )
        process.start()
        child.close()
        self.workers[slot] = process
        self.controls[slot] = parent

    def _await_ready(
        self, slot: int, process: BaseProcess, pipe: Connection, fatal: bool = True
    ) -> None:
        message: tuple[str, int, str] = ("failed", process.pid or 0, "exited before it was ready")
        if pipe.poll(READY_TIMEOUT_SECONDS):
            with contextlib.suppress(EOFError):
                message = pipe.recv()
        if message[0] != "ready":
            if fatal:
                raise RuntimeError(f"worker {slot} failed to start: {message[2]}")
            log.error("restarted worker failed", extra={"slot": slot, "reason": message[2]})
            return
        log.info("worker ready", extra={"slot": slot, "worker_pid": message[1]})

    def _supervise(self, listen: Listen) -> None:
        from metrics.exposition import worker_exited

        failures = 0
        while not self.stopping.wait(0.5):
            if self.reloading.is_set():
                self.reloading.clear()
                systemd.reloading()
                self._apply_reload()
                systemd.ready(f"serving with {len(self.workers)} workers")
            for slot, process in list(self.workers.items()):
                if process.is_alive():
                    continue
                worker_exited(process.pid or 0)
                delay = RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)]
                log.error(
                    "worker died; restarting",
                    extra={"slot": slot, "exitcode": process.exitcode, "delay_s": delay},
                )
                failures += 1
                if self.stopping.wait(delay):
                    return
                self._spawn(slot, listen)
                threading.Thread(
                    target=self._await_ready,
                    args=(slot, self.workers[slot], self.controls[slot], False),
                    daemon=True,
                ).start()

    def _apply_reload(self) -> None:
        """SIGHUP: re-read the configuration, apply log settings now, name what needs a
        restart; every process reads its TLS files again (even when the config is refused:
        a certificate rotation must not wait for an unrelated typo to be fixed)."""
        if self._reload is not None:
            try:
                new = self._reload()
            except ConfigError as error:
                log.error("reload refused; keeping the running configuration: %s", error)
            else:
                changed = _changed_keys(self.config, new)
                restart = [key for key in changed if key not in LIVE_KEYS]
                self.config = _with_live_keys(self.config, new)
                logs.setup(self.config.log_level, self.config.log_format)
                log.info(
                    "configuration reloaded",
                    extra={
                        "changed": ",".join(changed) or "nothing",
                        "need_restart": ",".join(restart),
                    },
                )
        for control in self.controls.values():  # each worker reads its TLS files again
            with contextlib.suppress(OSError):
                control.send(("reload", self.config))
        for reload in self._reloads:  # /metrics' certificate, the upstream link's
            reload()

    def _stop_workers(self) -> None:
        for process in self.workers.values():
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_grace_seconds + 5
        for process in self.workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker did not drain in time; killing", extra={"pid": process.pid})
                process.kill()
                process.join()

    # Single-instance duties -------------------------------------------------

    def _follow(self, store: Store) -> bool:
        """A replica: follow the primary, and serve only once the store holds a whole copy
        (False when stopped before that). The node prefix is the primary's."""
        from idnode.node import replicas

        follower = replicas.start_follower(self.config, store, self.stopping)
        if follower is None:
            return False
        self._singletons.append(follower)
        prefix = replicas.node_prefix(store, self.config.node_prefix)
        if prefix != self.config.node_prefix:
            log.info("serving the primary's node prefix", extra={"node_prefix": prefix})
            self.config = dataclasses.replace(self.config, node_prefix=prefix)
        return True

    def _start_singletons(self, store: Store, listen: Listen) -> str:
        from idnode.node import bootstrap

        started = bootstrap.start_singletons(self.config, store, listen)
        self._singletons.extend(started.services)
        self._reloads.extend(started.reloads)
        return started.metrics_address


def node_file_path(data_dir: str) -> str:
    """Where a running node describes itself (its ready line and upstream) for `idnode status`."""
    return os.path.join(data_dir, "run", NODE_FILE)


def _write_run_file(path: str, document: dict[str, object]) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(document, handle)
    os.replace(temporary, path)


def _changed_keys(old: DataclassInstance, new: DataclassInstance, prefix: str = "") -> list[str]:
    """Dotted names of the config keys whose values differ."""
    changed: list[str] = []
    for field in dataclasses.fields(old):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if dataclasses.is_dataclass(before) and not isinstance(before, type):
            changed += _changed_keys(before, after, f"{prefix}{field.name}.")
        elif before != after:
            changed.append(prefix + field.name)
    return changed


def _with_live_keys(running: Config, new: Config) -> Config:
    """`running` with the LIVE_KEYS taken from `new`."""
    dns = dataclasses.replace(
        running.dns,
        **{k[4:]: getattr(new.dns, k[4:]) for k in LIVE_KEYS if k.startswith("dns.")},
    )
    top = {k: getattr(new, k) for k in LIVE_KEYS if "." not in k}
    return dataclasses.replace(running, dns=dns, **top)
