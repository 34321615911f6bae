"""The hierarchy in `idnode serve`: the upward sync (master) and referrals (workers)."""

from __future__ import annotations

import os

from idnode.config import Config, split_host_port, tls_pair
from idnode.node.parts import Listen, upstream_tls
from metrics.exposition import counter_total
from proto import handle_pb2
from registry.signer import Signer
from registry.store import Store
from sync.pusher import Pusher, PushOptions
from sync.referrer import UpstreamReferrer

STATUS_FILE = "sync-status.json"
"""The pusher's last words, under DATA_DIR/run/, read by `idnode status`."""
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def status_path(data_dir: str) -> str:
    return os.path.join(data_dir, "run", STATUS_FILE)


def start(
    config: Config, store: Store, listen: Listen | None = None, signer: Signer | None = None
) -> Pusher | None:
    """Start the upstream sync in the master when `config.upstream` is set; with `signer`,
    what it pushes is signed first (checkpoints the top-level node checks)."""
    if not config.upstream:
        return None
    pusher = Pusher(
        store,
        config.node_prefix.lower(),
        config.upstream,
        config.upstream_token,
        sites=_sites(listen, grpc_tls=tls_pair(config, "grpc") is not None),
        options=PushOptions(stats_interval_seconds=config.sync_stats_interval_seconds),
        resolutions=lambda: counter_total("idnode_resolve_requests"),
        status_path=status_path(config.data_dir),
        tls=upstream_tls(config),
        signer=signer,
    )
    pusher.start()
    return pusher


def _sites(listen: Listen | None, grpc_tls: bool = False) -> list[handle_pb2.Site]:
    """Where this node serves, as announced upstream; wildcard addresses say nothing."""
    if listen is None:
        return []
    dns = [a for a in listen.dns if split_host_port(a)[0].strip("[]") not in WILDCARD_HOSTS]
    return [
        handle_pb2.Site(grpc_address=address, dns_address=dns[0] if dns else "", grpc_tls=grpc_tls)
        for address in listen.grpc
        if split_host_port(address)[0].strip("[]") not in WILDCARD_HOSTS
    ]


def referrer(config: Config) -> UpstreamReferrer | None:
    """Where workers learn the home of a prefix outside the node prefix (asks the upstream)."""
    if not config.upstream:
        return None
    return UpstreamReferrer(config.upstream, tls=upstream_tls(config))
