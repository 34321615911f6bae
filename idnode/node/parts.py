"""What the master and the workers both build from the configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from idnode.config import Config
from registry.store import Store, StoreOptions
from resolver.dns import DnsOptions
from resolver.http import HttpOptions


@dataclass(frozen=True)
class Listen:
    """Concrete addresses every worker binds (ports already chosen by the master)."""

    grpc: tuple[str, ...]
    dns: tuple[str, ...]
    http: tuple[str, ...] = ()


def open_store(config: Config, readonly: bool = False) -> Store:
    return Store(
        config.data_dir,
        StoreOptions(
            map_size_bytes=config.map_size_bytes, durable=config.durable, readonly=readonly
        ),
    )


def dns_options(config: Config) -> DnsOptions:
    zone = config.dns.zone
    return DnsOptions(
        zone=zone,
        nameservers=config.dns.nameservers or (f"ns1.{zone}",),
        glue=config.dns.glue,
        transfer_allow=config.dns.transfer_allow,
        notify=config.dns.notify,
        rrl_responses_per_second=config.dns.rrl_responses_per_second,
        rrl_slip=config.dns.rrl_slip,
        rrl_workers=config.worker_count,
        rrl_table_size=config.dns.rrl_table_size,
        identity=config.dns.identity,
        hide_identity=config.dns.hide_identity,
        nsid=config.dns.nsid,
        version=config.dns.version,
        cookies=config.dns.cookies,
        cookie_secret=config.dns.cookie_secret,
        tcp_idle_timeout_seconds=config.dns.tcp_idle_timeout_seconds,
        tcp_message_timeout_seconds=config.dns.tcp_message_timeout_seconds,
        max_tcp_connections=config.dns.max_tcp_connections,
        max_tcp_connections_per_source=config.dns.max_tcp_connections_per_source,
        cache_entries=config.dns.cache_entries,
        negative_cache_entries=config.dns.negative_cache_entries,
        cache_bytes=config.dns.cache_bytes,
        negative_cache_bytes=config.dns.negative_cache_bytes,
    )


def http_options(config: Config) -> HttpOptions:
    return HttpOptions(
        **dataclasses.asdict(config.http), shutdown_grace_seconds=config.shutdown_grace_seconds
    )
