"""Configuration: defaults, one TOML file, IDNODE_* environment, flags; read once, frozen."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from resolver.http.config import HttpConfigError, HttpOptions


class ConfigError(Exception):
    """The configuration is invalid."""


@dataclass(frozen=True)
class DnsConfig:
    """The DNS face ([dns] in the TOML file)."""

    zone: str = "id.example."
    nameservers: tuple[str, ...] = ()
    glue: tuple[str, ...] = ()
    transfer_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    notify: tuple[str, ...] = ()
    rrl_responses_per_second: int = 1000
    rrl_slip: int = 2
    rrl_table_size: int = 65536
    identity: str = ""
    hide_identity: bool = False
    nsid: bool = True
    version: str = ""
    cookies: bool = True
    cookie_secret: str = ""
    tcp_idle_timeout_seconds: float = 5.0
    tcp_message_timeout_seconds: float = 2.0
    max_tcp_connections: int = 256
    max_tcp_connections_per_source: int = 16
    cache_entries: int = 200_000
    negative_cache_entries: int = 50_000
    cache_bytes: int = 64 << 20
    negative_cache_bytes: int = 16 << 20
    udp_batch: int = 32


@dataclass(frozen=True)
class HttpConfig:
    """The HTTP face ([http] in the TOML file); the limits of docs/http.md."""

    max_request_line_bytes: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100
    max_body_bytes: int = 3 << 20
    request_head_timeout_seconds: float = 10.0
    request_body_timeout_seconds: float = 30.0
    keep_alive_seconds: float = 5.0
    max_connections: int = 1024
    write_threads: int = 8
    cache_entries: int = 200_000
    negative_cache_entries: int = 50_000
    cache_bytes: int = 256 << 20
    negative_cache_bytes: int = 32 << 20


@dataclass(frozen=True)
class Config:
    """Everything `idnode serve` needs; see deploy/idnode.toml for each key's meaning."""

    data_dir: str = "var"
    init: bool = False  # create a new store when the data dir holds none (--init)
    node_prefix: str = "88.118"
    grpc_listen: tuple[str, ...] = ("127.0.0.1:8600",)
    dns_listen: tuple[str, ...] = ("127.0.0.1:8653",)
    http_listen: tuple[str, ...] = ()  # empty: no HTTP face
    metrics_listen: str = "127.0.0.1:9600"
    workers: int = 0  # 0: one per core
    upstream: str = ""
    upstream_token: str = ""
    # TLS (docs/security.md): the shared pair serves gRPC and HTTP; a listener's own pair
    # overrides it; /metrics uses TLS only when asked (metrics_tls or its own pair).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    grpc_tls_cert_file: str = ""
    grpc_tls_key_file: str = ""
    http_tls_cert_file: str = ""
    http_tls_key_file: str = ""
    metrics_tls: bool = False
    metrics_tls_cert_file: str = ""
    metrics_tls_key_file: str = ""
    # The link to the upstream: TLS when upstream_tls or any file below is set.
    upstream_tls: bool = False
    upstream_ca_file: str = ""  # CAs that sign the upstream's certificate (default: system's)
    upstream_cert_file: str = ""  # this node's client certificate (mutual TLS)
    upstream_key_file: str = ""
    upstream_server_name: str = ""  # the name to verify, when not the upstream's host
    follow_ca_file: str = ""  # CAs for referred sites that serve TLS (default: system's)
    sync_stats_interval_seconds: float = 60.0
    # How often the master chains (SM3) and signs (SM2 checkpoints) the change log's new
    # entries; a record's proof is available once its change is signed (docs/security.md).
    sign_interval_seconds: float = 1.0
    replica_of: str = ""  # HOST:PORT of the primary this node is a read replica of
    replica_token: str = ""  # the replication credential at the primary
    replica_primary_http: str = ""  # the primary's HTTP base URL for 307s ("": learned)
    # The link to the primary: TLS when replica_tls or any file below is set.
    replica_tls: bool = False
    replica_ca_file: str = ""  # CAs that sign the primary's certificate (default: system's)
    replica_cert_file: str = ""  # this replica's client certificate (mutual TLS)
    replica_key_file: str = ""
    replica_server_name: str = ""  # the name to verify, when not the primary's host
    max_lag_seconds: float = 0.0  # a replica further behind reports NOT_SERVING; 0: no bound
    min_sequence_wait_seconds: float = 1.0  # a read-your-writes read waits this long at most
    http_site: str = ""  # base URL clients reach this node's HTTP face at ("": from http_listen)
    map_size_bytes: int = 1 << 30
    durable: bool = True
    changelog_keep_entries: int = 1_000_000
    changelog_max_entries: int = 20_000_000
    cache_entries: int = 200_000
    negative_cache_entries: int = 50_000
    cache_bytes: int = 256 << 20
    negative_cache_bytes: int = 32 << 20
    follow_deadline_seconds: float = 2.0
    follow_max_concurrent: int = 8
    list_page_bytes: int = 4 << 20
    grpc_threads: int = 16
    grpc_max_message_bytes: int = 32 << 20
    shutdown_drain_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    log_level: str = "info"
    log_format: str = "text"  # text or json
    dns: DnsConfig = field(default_factory=DnsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def load(
    path: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the configuration: defaults < TOML file < IDNODE_* variables < `overrides`.

    Keys are dotted (`dns.zone`); variables are upper-case with `_` for `.`
    (`IDNODE_DNS_ZONE`). Raises ConfigError naming the key that is wrong.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # where each value came from, for error messages
    if path:
        try:
            with open(path, "rb") as handle:
                _flatten(tomllib.load(handle), "", values)
        except OSError as error:
            raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    known = _known_keys()
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key {key!r} in {path}")
        sources[key] = f"config key {key!r} in {path}"
    env = os.environ if environ is None else environ
    for key in known:
        variable = "IDNODE_" + key.upper().replace(".", "_")
        if variable in env:
            values[key] = env[variable]
            sources[key] = variable
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
            sources[key] = f"--{key.rpartition('.')[2].replace('_', '-')} (config key {key!r})"
    config: Config = _build(Config, "", values, sources)
    return config


def _flatten(table: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in table.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", out)
        else:
            out[prefix + key] = value


def _known_keys(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    keys: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind):
            keys.update(_known_keys(typing.cast(type, kind), f"{prefix}{item.name}."))
        else:
            keys[prefix + item.name] = kind
    return keys


def _build(cls: type, prefix: str, values: Mapping[str, Any], sources: Mapping[str, str]) -> Any:
    hints = typing.get_type_hints(cls)
    arguments: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        key = prefix + item.name
        kind = hints[item.name]
        if dataclasses.is_dataclass(kind):
            arguments[item.name] = _build(typing.cast(type, kind), key + ".", values, sources)
        elif key in values:
            source = sources.get(key, f"config key {key!r}")
            arguments[item.name] = _coerce(source, kind, values[key])
    config = cls(**arguments)
    _validate(config, prefix, sources)
    return config


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _coerce(source: str, kind: Any, raw: Any) -> Any:
    """`raw` as `kind`; raises ConfigError naming `source`, the value and the expected form."""
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
        elif kind is int:
            if not isinstance(raw, bool):
                return int(raw)
        elif kind is float:
            if not isinstance(raw, bool):
                return float(raw)
        elif kind is str:
            if isinstance(raw, str):
                return raw
        elif origin is tuple:
            if isinstance(raw, str):
                raw = [part.strip() for part in raw.split(",") if part.strip()]
            if isinstance(raw, list | tuple):
                return tuple(str(item) for item in raw)
        elif isinstance(kind, types.UnionType):
            return raw
        else:
            raise ConfigError(f"{source}: unsupported type {kind}")
    except (TypeError, ValueError):
        pass
    expected = "a list (or comma-separated text)" if origin is tuple else _EXPECTED[kind]
    raise ConfigError(f"{source}={_shown(raw)}: expected {expected}")


def _shown(raw: Any) -> str:
    """A value as the user wrote it, cut short."""
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _validate(config: Any, prefix: str, sources: Mapping[str, str]) -> None:
    def fail(key: str, why: str) -> None:
        raise ConfigError(f"{sources.get(prefix + key, f'config key {prefix + key!r}')}: {why}")

    if isinstance(config, Config):
        if config.workers < 0:
            fail("workers", "must be 0 (one per core) or more")
        if config.map_size_bytes < 1 << 20:
            fail("map_size_bytes", "must be at least 1 MiB")
        if config.log_format not in ("text", "json"):
            fail("log_format", "must be 'text' or 'json'")
        if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            fail("log_level", "must be debug, info, warning or error")
        if config.grpc_threads < 1:
            fail("grpc_threads", "must be at least 1")
        for address in (*config.grpc_listen, *config.dns_listen, config.metrics_listen):
            try:
                split_host_port(address)
            except ValueError as error:
                fail("grpc_listen/dns_listen/metrics_listen", str(error))
        for address in config.http_listen:
            try:
                split_host_port(address)
            except ValueError as error:
                fail("http_listen", str(error))
        if config.changelog_keep_entries < 1:
            fail("changelog_keep_entries", "must be at least 1")
        if config.changelog_max_entries < config.changelog_keep_entries:
            fail("changelog_max_entries", "must be at least changelog_keep_entries")
        if config.sync_stats_interval_seconds <= 0:
            fail("sync_stats_interval_seconds", "must be more than 0")
        if not 0 < config.sign_interval_seconds <= 3600:
            fail("sign_interval_seconds", "must be more than 0 and at most 3600")
        _validate_limits(config, fail)
        if config.upstream:
            try:
                split_host_port(config.upstream)
            except ValueError as error:
                fail("upstream", str(error))
            if not (config.upstream_token or config.upstream_cert_file or config.replica_of):
                fail(
                    "upstream_token",
                    "is required with 'upstream' (idnode toplevel node add), unless the node "
                    "presents a pinned client certificate (upstream_cert_file)",
                )
        _validate_tls(config, fail)
        _validate_replica(config, fail)
    if isinstance(config, HttpConfig):
        try:
            HttpOptions(**dataclasses.asdict(config))
        except HttpConfigError as error:
            key, _, why = str(error).partition(": ")
            fail(key, why)
    if isinstance(config, DnsConfig):
        if not config.zone.endswith("."):
            fail("zone", f"{config.zone!r} must be absolute (end with '.')")
        if config.rrl_responses_per_second < 0:
            fail("rrl_responses_per_second", "must be 0 (off) or more")
        if not 0 <= config.udp_batch <= 1024:
            fail("udp_batch", "must be from 0 (one datagram per system call) to 1024")


def _validate_limits(config: Config, fail: Callable[[str, str], None]) -> None:
    for key in ("cache_bytes", "negative_cache_bytes"):
        if getattr(config, key) < 0:
            fail(key, "must be 0 (keep nothing) or more")
    if config.follow_deadline_seconds <= 0:
        fail("follow_deadline_seconds", "must be more than 0")
    if config.follow_max_concurrent < 1:
        fail("follow_max_concurrent", "must be at least 1")
    if not 64 << 10 <= config.list_page_bytes <= config.grpc_max_message_bytes - (64 << 10):
        fail("list_page_bytes", "must be from 65536 to grpc_max_message_bytes - 65536")


_TLS_PAIRS = (
    ("tls_cert_file", "tls_key_file"),
    ("grpc_tls_cert_file", "grpc_tls_key_file"),
    ("http_tls_cert_file", "http_tls_key_file"),
    ("metrics_tls_cert_file", "metrics_tls_key_file"),
    ("upstream_cert_file", "upstream_key_file"),
    ("replica_cert_file", "replica_key_file"),
)


def _validate_tls(config: Config, fail: Callable[[str, str], None]) -> None:
    """A certificate needs its key and the other way round; whether the files can be used is
    checked at start (they may change until then)."""
    for cert_key, key_key in _TLS_PAIRS:
        cert, key = getattr(config, cert_key), getattr(config, key_key)
        if cert and not key:
            fail(key_key, f"is required with {cert_key!r}")
        if key and not cert:
            fail(cert_key, f"is required with {key_key!r}")
    if config.metrics_tls and not (config.metrics_tls_cert_file or config.tls_cert_file):
        fail("metrics_tls", "needs a certificate: tls_cert_file or metrics_tls_cert_file")


def tls_pair(config: Config, listener: str) -> tuple[str, str] | None:
    """The (cert, key) files `listener` ("grpc", "http", "metrics") serves with, or None."""
    own = getattr(config, f"{listener}_tls_cert_file"), getattr(config, f"{listener}_tls_key_file")
    if own[0]:
        return own
    if listener == "metrics" and not config.metrics_tls:
        return None
    return (config.tls_cert_file, config.tls_key_file) if config.tls_cert_file else None


def _validate_replica(config: Config, fail: Callable[[str, str], None]) -> None:
    if config.replica_of:
        try:
            split_host_port(config.replica_of)
        except ValueError as error:
            fail("replica_of", str(error))
        if not config.replica_token:
            fail("replica_token", "is required with 'replica_of' (idnode replica credential)")
    for key in ("replica_primary_http", "http_site"):
        url = getattr(config, key)
        if url and not (url.startswith(("http://", "https://")) and len(url) <= 2000):
            fail(key, f"{url[:60]!r} must be an http:// or https:// base URL")
    if config.max_lag_seconds < 0:
        fail("max_lag_seconds", "must be 0 (no bound) or more")
    if not 0 <= config.min_sequence_wait_seconds <= 30:
        fail("min_sequence_wait_seconds", "must be from 0 to 30")


def split_host_port(address: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` into its parts. Raises ValueError naming what is wrong."""
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
    else:
        host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not HOST:PORT (IPv6 as [ADDR]:PORT)")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
