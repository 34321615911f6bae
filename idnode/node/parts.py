"""What the master and the workers both build from the configuration."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from idnode.config import Config, split_host_port, tls_pair
from registry.crypto.certificates import CertificateError
from registry.store import Store, StoreOptions
from resolver.dns import DnsOptions
from resolver.http import HttpOptions
from resolver.tls import CertificateSource, ClientTls, ServerTls, client_tls_if_wanted, is_loopback

log = logging.getLogger("idnode.tls")


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
        udp_batch=config.dns.udp_batch,
    )


def http_options(config: Config) -> HttpOptions:
    return HttpOptions(
        **dataclasses.asdict(config.http), shutdown_grace_seconds=config.shutdown_grace_seconds
    )


def certificate_source(
    config: Config, listener: str, measured: bool = True
) -> CertificateSource | None:
    """The TLS certificate `listener` ("grpc", "http", "metrics") serves with, None for plain;
    `measured`: it sets the expiry gauge (not for a check whose source is thrown away).

    Raises SystemExit naming the config key when the files cannot be used.
    """
    pair = tls_pair(config, listener)
    if pair is None:
        return None
    try:
        return CertificateSource(ServerTls(*pair), listener if measured else "")
    except CertificateError as error:
        key = (
            f"{listener}_tls_cert_file"
            if getattr(config, f"{listener}_tls_cert_file")
            else ("tls_cert_file")
        )
        raise SystemExit(f"idnode: {error} (config key {key!r})") from None


def upstream_tls(config: Config) -> ClientTls | None:
    """How the node verifies the upstream and what it presents; None for a plain link."""
    return client_tls_if_wanted(
        config.upstream_tls,
        ca_file=config.upstream_ca_file,
        cert_file=config.upstream_cert_file,
        key_file=config.upstream_key_file,
        server_name=config.upstream_server_name,
    )


def replica_tls(config: Config) -> ClientTls | None:
    """How a replica verifies its primary and what it presents; None for a plain link."""
    return client_tls_if_wanted(
        config.replica_tls,
        ca_file=config.replica_ca_file,
        cert_file=config.replica_cert_file,
        key_file=config.replica_key_file,
        server_name=config.replica_server_name,
    )


def follow_tls(config: Config) -> ClientTls:
    """How referred sites that announce TLS are verified."""
    return ClientTls(ca_file=config.follow_ca_file)


def warn_plain_listeners(config: Config, listen: Listen) -> None:
    """One warning per credential-carrying listener (gRPC, HTTP) on a non-loopback address
    without TLS: tokens sent to it cross the network in clear text."""
    faces = [("grpc", a) for a in listen.grpc] + [("http", a) for a in listen.http]
    for face, address in faces:
        if tls_pair(config, face) is None and not is_loopback(split_host_port(address)[0]):
            log.warning(
                "%s listens on %s without TLS: bearer tokens and data cross the network "
                "in clear text (set tls_cert_file/tls_key_file, docs/security.md)",
                face, address,
            )  # fmt: skip
