"""`idnode serve`: its flags, and the configuration they override."""

from __future__ import annotations

import argparse
from typing import Any

from idnode.config import Config, ConfigError, load


def add_parsers(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run a secondary node",
        description="Run a secondary node: gRPC and DNS resolution, registry, /metrics. "
        "Precedence, lowest first: defaults, the TOML config file, IDNODE_* variables, flags.",
    )
    add_node_flags(serve)
    serve.set_defaults(run=_run_serve)


def add_node_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that override the configuration (shared with the demo launcher)."""
    d = Config()  # the defaults each help text shows
    parser.add_argument("--config", metavar="FILE", help="TOML config file (default: none)")
    parser.add_argument(
        "--data-dir", metavar="DIR", help=f"LMDB data directory (default: {d.data_dir})"
    )
    parser.add_argument(
        "--init", action="store_true", default=None,
        help="create a new node (store and identity) when the data dir holds none; without "
        "it a missing or empty data dir stops start-up (default: off)",
    )  # fmt: skip
    parser.add_argument(
        "--node-prefix", metavar="PREFIX", help=f"node prefix (default: {d.node_prefix})"
    )
    parser.add_argument(
        "--grpc-listen", metavar="HOST:PORT", action="append",
        help=f"gRPC address, repeatable; [::1]:PORT for IPv6 (default: {_listed(d.grpc_listen)})",
    )  # fmt: skip
    parser.add_argument(
        "--dns-listen", metavar="HOST:PORT", action="append",
        help=f"DNS address (UDP and TCP), repeatable (default: {_listed(d.dns_listen)})",
    )  # fmt: skip
    parser.add_argument("--no-dns", action="store_true", help="do not serve DNS")
    parser.add_argument(
        "--http-listen", metavar="HOST:PORT", action="append",
        help="HTTP address (REST API, QR-code links, lookup page), repeatable "
        f"(default: {_listed(d.http_listen)})",
    )  # fmt: skip
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help=f"/metrics address (default: {d.metrics_listen})",
    )
    parser.add_argument("--zone", metavar="ZONE", help=f"DNS zone served (default: {d.dns.zone})")
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help=f"worker processes, 0 for one per core (default: {d.workers})",
    )  # fmt: skip
    parser.add_argument(
        "--upstream", metavar="HOST:PORT", help="the top-level node (default: none, no sync)"
    )
    parser.add_argument(
        "--upstream-token", metavar="TOKEN", help="credential at the upstream (default: none)"
    )
    _add_tls_flags(parser)
    parser.add_argument(
        "--replica-of", metavar="HOST:PORT",
        help="run as a read replica of this primary: copy it, follow its change log, serve "
        "reads, refuse writes (default: none, a primary) (docs/scale-out.md)",
    )  # fmt: skip
    parser.add_argument(
        "--replica-token", metavar="TOKEN",
        help="the replication credential at the primary (idnode replica credential; "
        "or IDNODE_REPLICA_TOKEN) (default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--max-lag-seconds", type=float, metavar="S",
        help="a replica further behind its primary reports NOT_SERVING to health checks "
        f"(default: {d.max_lag_seconds:g}, no bound)",
    )  # fmt: skip
    parser.add_argument(
        "--log-format", choices=["text", "json"], help=f"log line format (default: {d.log_format})"
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"],
        help=f"least severe level logged (default: {d.log_level})",
    )  # fmt: skip


# Flag -> (config key, help). The shared pair serves gRPC and HTTP; a listener's own
# pair overrides it (docs/security.md).
_TLS_FLAGS = {
    "--tls-cert-file": ("tls_cert_file", "PEM certificate chain for gRPC and HTTP"),
    "--tls-key-file": ("tls_key_file", "its private key (PEM)"),
    "--grpc-tls-cert-file": ("grpc_tls_cert_file", "gRPC's own certificate chain"),
    "--grpc-tls-key-file": ("grpc_tls_key_file", "gRPC's own key"),
    "--http-tls-cert-file": ("http_tls_cert_file", "HTTP's own certificate chain"),
    "--http-tls-key-file": ("http_tls_key_file", "HTTP's own key"),
    "--metrics-tls-cert-file": ("metrics_tls_cert_file", "serve /metrics over TLS with this"),
    "--metrics-tls-key-file": ("metrics_tls_key_file", "/metrics' key"),
    "--upstream-ca-file": ("upstream_ca_file", "CAs of the upstream (TLS to it; else system's)"),
    "--upstream-cert-file": ("upstream_cert_file", "client certificate for the upstream"),
    "--upstream-key-file": ("upstream_key_file", "its key"),
    "--upstream-server-name": ("upstream_server_name", "name the upstream's certificate has"),
}


def _add_tls_flags(parser: argparse.ArgumentParser) -> None:
    for flag, (key, text) in _TLS_FLAGS.items():
        parser.add_argument(
            flag, metavar="NAME" if key.endswith("name") else "PEM", help=f"{text} (config "
            f"key {key}; default: none)", dest=key,
        )  # fmt: skip
    parser.add_argument(
        "--upstream-tls", action="store_true", default=None,
        help="TLS to the upstream, verified with the system's CAs (config key upstream_tls; "
        "implied by the --upstream-* files)",
    )  # fmt: skip


def _listed(addresses: tuple[str, ...]) -> str:
    return ", ".join(addresses) or "none"


def load_config(args: argparse.Namespace) -> Config:
    """The configuration with the flags of `add_node_flags` on top; exits naming a bad key."""
    try:
        return reload_config(args)
    except ConfigError as error:
        raise SystemExit(f"idnode: {error}") from None


def reload_config(args: argparse.Namespace) -> Config:
    """The configuration with the flags on top, read again. Raises ConfigError."""
    overrides = {
        "data_dir": args.data_dir,
        "init": args.init,
        "node_prefix": args.node_prefix,
        "grpc_listen": tuple(args.grpc_listen) if args.grpc_listen else None,
        "dns_listen": () if args.no_dns else (tuple(args.dns_listen) if args.dns_listen else None),
        "http_listen": tuple(args.http_listen) if args.http_listen else None,
        "metrics_listen": args.metrics_listen,
        "dns.zone": args.zone,
        "workers": args.workers,
        "upstream": args.upstream,
        "upstream_token": args.upstream_token,
        "replica_of": args.replica_of,
        "replica_token": args.replica_token,
        "max_lag_seconds": args.max_lag_seconds,
        "log_format": args.log_format,
        "log_level": args.log_level,
        "upstream_tls": args.upstream_tls,
        **{key: getattr(args, key) for key, _ in _TLS_FLAGS.values()},
    }
    return load(args.config, overrides)


def _run_serve(args: argparse.Namespace) -> int:
    from idnode.node import master

    return master.main(load_config(args), reload=lambda: reload_config(args))
