"""Read replicas in `idnode serve`: the follower (master) and the replica's faces (workers)."""

from __future__ import annotations

import logging
import os
import threading
import time

from idnode.config import Config, join_host_port, split_host_port
from idnode.node.parts import replica_tls
from registry.crypto.certificates import CertificateError
from registry.errors import IdnodeError
from registry.store import Store
from resolver.readonly import Replica
from sync.replica import marks, status
from sync.replica.follower import Follower

log = logging.getLogger("idnode.replica")

STATUS_FILE = "replica-status.json"
"""The follower's last words, under DATA_DIR/run/, read by `idnode status` and the workers."""
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def status_path(data_dir: str) -> str:
    return os.path.join(data_dir, "run", STATUS_FILE)


# Master ------------------------------------------------------------------------------------


def check_store(store: Store, config: Config) -> None:
    """A replica starts on an empty store (it copies the primary) or on a replica's own;
    a primary's store is refused, so that nothing it holds is silently thrown away.
    Marks a new store as a replica's. Exits with one line naming the problem."""
    with store.read() as txn:
        role = store.get_meta(txn, marks.ROLE_KEY)
        holds = store.last_sequence(txn) > 0 or store.record_count(txn) > 0
    if role == marks.REPLICA:
        return
    if role is not None or holds:
        raise SystemExit(
            f"idnode: data dir {config.data_dir} holds a primary's store (role "
            f"{(role or b'primary').decode()!r}); a replica starts on an empty data dir "
            "(or its own), so nothing held here is thrown away"
        )
    store.write(lambda batch: marks.put(batch, marks.ROLE_KEY, marks.REPLICA))


def start_follower(config: Config, store: Store, stop: threading.Event) -> Follower | None:
    """Start following the primary; on a store without a whole copy, wait for the snapshot
    before returning (the workers start on a whole copy). None when stopped meanwhile."""
    try:
        follower = Follower(
            store,
            config.replica_of,
            config.replica_token,
            status_path=status_path(config.data_dir),
            tls=replica_tls(config),
        )
    except CertificateError as error:
        raise SystemExit(f"idnode: {error}") from None
    follower.start()
    if not follower.copied:
        log.info("copying the primary before serving", extra={"primary": config.replica_of})
        started = time.monotonic()
        if not follower.wait_copied(stop):
            follower.stop()
            return None
        log.info(
            "copy of the primary taken",
            extra={"sequence": follower.applied, "seconds": round(time.monotonic() - started, 1)},
        )
    return follower


def node_prefix(store: Store, configured: str) -> str:
    """The node prefix a replica serves: its primary's (kept with the copy)."""
    with store.read() as txn:
        found = store.get_meta(txn, marks.NODE_PREFIX_KEY)
    return found.decode() if found else configured


# Workers -----------------------------------------------------------------------------------


def face(config: Config, store: Store) -> Replica | None:
    """What the faces of a replica need: the primary to name, its HTTP site (configured,
    or as the primary last said); None on a primary."""
    if not config.replica_of:
        return None

    def primary_http() -> str:
        if config.replica_primary_http:
            return config.replica_primary_http
        try:
            with store.read() as txn:
                return marks.primary(store, txn).get("http_site", "")
        except IdnodeError:
            return ""

    return Replica(config.replica_of, primary_http)


class Health:
    """Whether a replica should take reads, from its follower's report (a primary: always)."""

    def __init__(self, config: Config) -> None:
        self._path = status_path(config.data_dir) if config.replica_of else ""
        self._max_lag_seconds = config.max_lag_seconds
        self.reason = ""

    def serving(self) -> bool:
        if not self._path:
            return True
        ok, self.reason = status.serving(
            status.read(self._path), self._max_lag_seconds, time.time()
        )
        return ok


def http_site(config: Config, bound: tuple[str, ...]) -> str:
    """The base URL of this node's HTTP face as replicas should redirect writes to it."""
    if config.http_site:
        return config.http_site
    for address in bound:
        host, port = split_host_port(address)
        if host.strip("[]") not in WILDCARD_HOSTS:
            return "http://" + join_host_port(host.strip("[]"), port)
    return ""
