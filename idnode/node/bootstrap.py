"""The composition root's master side: first-start initialisation and single-instance duties."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import metrics
from idnode import __version__
from idnode.config import Config, join_host_port
from idnode.node import replicas, systemd, upstream
from idnode.node.parts import Listen, certificate_source, dns_options, open_store
from metrics import exposition
from registry import accounts, identity, nodekey, retention
from registry.crypto import sm2
from registry.errors import IdnodeError
from registry.registry import Registry
from registry.signer import Signer, Signing
from registry.store import Store
from resolver.dns import Notifier
from sync.pusher import CURSOR as SYNC_CURSOR

log = logging.getLogger("idnode.bootstrap")
TRIM_INTERVAL_SECONDS = 60.0


class Service(Protocol):
    def stop(self) -> None: ...


STORE_FILE = "data.mdb"


def check_data_dir(config: Config) -> None:
    """Stop with one line unless the data dir holds a store or `init` asks for a new one.

    A missing or empty data dir, or an empty data.mdb (an unmounted volume, a wrong
    path), must not silently become a new node: it would sync upward as this node
    prefix with no records.
    """
    if config.init or config.replica_of:  # a replica's first start copies its primary
        return
    directory = config.data_dir
    try:
        size_bytes = os.stat(os.path.join(directory, STORE_FILE)).st_size
    except FileNotFoundError:
        size_bytes = -1
    except OSError as error:
        raise SystemExit(f"idnode: cannot use data dir {directory}: {error.strerror}") from None
    if size_bytes > 0:
        return
    if not os.path.exists(directory):
        what = "does not exist"
    elif size_bytes < 0:
        what = f"holds no store ({STORE_FILE})"
    else:
        what = f"has an empty {STORE_FILE}"
    raise SystemExit(
        f"idnode: data dir {directory} {what}; to create a new node there, start with --init "
        "(config key 'init'), otherwise mount or restore the node's data dir"
    )


def initialise(config: Config) -> Store:
    """Open the store, check it belongs to this node prefix, create the administrator and
    the node's identity once.

    A replica's store is only opened (and marked as a replica's): everything in it comes
    from its primary. Exits with a message naming the problem when the data dir cannot
    be used.
    """
    if config.replica_of:
        try:
            store = open_store(config)
        except IdnodeError as error:
            raise SystemExit(f"idnode: cannot use data dir {config.data_dir}: {error}") from None
        replicas.check_store(store, config)
        return store
    try:
        store = open_store(config)
        registry = Registry(store, config.node_prefix)
        _check_node_prefix(store, registry.node_prefix)
        registry.ensure_node_prefix()
        token = accounts.ensure_admin(store, os.environ.get("IDNODE_ADMIN_TOKEN") or None)
        created = identity.node_id(store) is None
        node_id = identity.ensure_node_id(store)
        _key, key_made = nodekey.ensure(store, registry.node_prefix)
    except (IdnodeError, sm2.SM2Error) as error:
        raise SystemExit(f"idnode: cannot use data dir {config.data_dir}: {error}") from None
    if created:
        log.info("node identity created", extra={"node_id": node_id})
    if key_made:
        log.info(
            "node SM2 key created; its public key is HS_PUBKEY of the node's prefix record",
            extra={"key_file": nodekey.key_path(config.data_dir), "record": registry.prefix_handle},
        )
    if token is not None:
        _hand_over_admin_token(config.data_dir, token)
    return store


ADMIN_TOKEN_FILE = "admin.token"


def _hand_over_admin_token(data_dir: str, token: str) -> None:
    """Show the new administrator token once: on a terminal, printed; under a service
    manager (whose journal keeps everything), written to DATA_DIR/admin.token (0600)."""
    if not systemd.under_systemd():
        print(
            "administrator token (shown once; keep it, it is stored only hashed):\n"
            f"  {token}\n"
            "use it as: export IDNODE_TOKEN=<token>",
            file=sys.stderr,
            flush=True,
        )
        return
    path = os.path.join(data_dir, ADMIN_TOKEN_FILE)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)  # also when the file existed with wider permissions
    print(
        f"administrator token written to {path} (mode 0600, shown nowhere else; "
        "move it somewhere safe and delete the file)",
        file=sys.stderr,
        flush=True,
    )


def _check_node_prefix(store: Store, node_prefix: str) -> None:
    with store.read() as txn:
        recorded = store.get_meta(txn, "node_prefix")
    if recorded is None:
        store.write(lambda batch: batch.put_meta("node_prefix", node_prefix.encode()))
    elif recorded.decode() != node_prefix:
        raise SystemExit(
            f"idnode: data dir {store.path} belongs to node prefix {recorded.decode()}, "
            f"not {node_prefix} (config key 'node_prefix')"
        )


@dataclass
class Singletons:
    metrics_address: str
    services: list[Service] = field(default_factory=list)
    reloads: list[Callable[[], object]] = field(default_factory=list)  # run on SIGHUP


class _Flusher:
    def __init__(self) -> None:
        self._stop = metrics.start_flusher()

    def stop(self) -> None:
        self._stop.set()
        metrics.flush()


def start_singletons(config: Config, store: Store, listen: Listen) -> Singletons:
    """Start what runs once per node, in the master: /metrics and the store gauges, the
    upstream sync, the change-log trimmer and DNS NOTIFY."""
    exposition.set_build_info(__version__)
    metrics.declare_known_series()
    metrics.on_flush(lambda: sample_store(store))
    metrics.flush()  # the store gauges are there from the first scrape
    metrics_tls = certificate_source(config, "metrics")
    context = metrics_tls.ssl_context() if metrics_tls is not None else None
    host, port = exposition.serve_metrics(config.metrics_listen, ssl_context=context)
    started = Singletons(metrics_address=join_host_port(host, port))
    if metrics_tls is not None:
        started.reloads.append(metrics_tls.reload)
    started.services.append(_Flusher())
    signer = None if config.replica_of else _signer(config, store)
    if signer is not None:
        started.services.append(Signing(signer, config.sign_interval_seconds))
    sync = None if config.replica_of else upstream.start(config, store, listen, signer)
    if sync is not None:  # only a primary syncs upward; its replicas follow it
        started.services.append(sync)
        started.reloads.append(sync.renew_channel)
    started.services.append(ChangelogTrimmer(config, store))
    if listen.dns and config.dns.notify:
        notifier = Notifier(store, dns_options(config))
        notifier.start()
        started.services.append(notifier)
    return started


def _signer(config: Config, store: Store) -> Signer:
    """The master's signer, after re-signing checkpoints of another key (registry.signer;
    its thread signs what was written while no node ran). Exits naming the key file when
    it cannot be read."""
    try:
        signer = Signer(store, nodekey.load(config.data_dir))
        resigned = signer.resign_foreign()
    except (IdnodeError, sm2.SM2Error, ValueError) as error:
        raise SystemExit(f"idnode: cannot sign the change log: {error}") from None
    if resigned:  # promoted, or a new key: the top-level node wants `toplevel node reset`
        log.warning(
            "checkpoints signed by another key or for another change log re-signed with "
            "this node's key",
            extra={"checkpoints": resigned, "key_file": nodekey.key_path(config.data_dir)},
        )
    return signer


class ChangelogTrimmer:
    """Trims the change log every TRIM_INTERVAL_SECONDS (registry.retention decides how far)."""

    def __init__(self, config: Config, store: Store) -> None:
        self._config = config
        self._store = store
        self._cursors = [SYNC_CURSOR] if config.upstream and not config.replica_of else []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="changelog-trim", daemon=True)
        self._thread.start()

    def trim_now(self) -> int:
        dropped = retention.trim(
            self._store,
            self._config.changelog_keep_entries,
            self._config.changelog_max_entries,
            self._cursors,
        )
        if dropped:
            log.info("change log trimmed", extra={"dropped": dropped})
        return dropped

    def _run(self) -> None:
        while not self._stop.wait(TRIM_INTERVAL_SECONDS):
            try:
                self.trim_now()
            except IdnodeError:
                log.exception("change-log trim failed; retrying at the next interval")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def sample_store(store: Store) -> None:
    """Set the store gauges from one read snapshot (nothing once the store is closed)."""
    if store.closed:
        return
    with store.read() as txn:
        metrics.IDENTIFIERS.set(store.record_count(txn))
        metrics.CHANGELOG_SEQUENCE.set(store.last_sequence(txn))
    metrics.STORE_SIZE.set(store.size_bytes())
    metrics.STORE_MAP_SIZE.set(store.map_size_bytes())
