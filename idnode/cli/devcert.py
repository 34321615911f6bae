"""`idnode dev-cert DIR`: a local CA with a server and a client certificate, for trying TLS."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from idnode.cli.output import EXIT_USAGE, emit
from registry.crypto import certificates

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
FILES = ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")


def add_parsers(commands: Any) -> None:
    sub = commands.add_parser(
        "dev-cert",
        help="make a local CA, a server and a client certificate for trying TLS",
        description="Make a local certificate authority and, signed by it, a server "
        "certificate (for localhost, 127.0.0.1 and ::1 unless --host is given) and a client "
        "certificate (for mutual TLS to a top-level node), all ECDSA P-256, files 0600. For "
        "trials and tests: production certificates come from your own CA.",
    )
    sub.add_argument("directory", metavar="DIR", help="where to write the files (created 0700)")
    sub.add_argument(
        "--host", action="append", metavar="NAME",
        help="a name or address the server certificate is for, repeatable "
        f"(default: {', '.join(DEFAULT_HOSTS)})",
    )  # fmt: skip
    sub.add_argument(
        "--client-name", default="idnode-node", metavar="NAME",
        help="the client certificate's common name (default: idnode-node)",
    )  # fmt: skip
    sub.add_argument("--days", type=float, default=825, help="validity (default 825 days)")
    sub.add_argument("--force", action="store_true", help="overwrite files already there")
    sub.add_argument("--json", action="store_true", help="print one JSON document")
    sub.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    directory = args.directory
    existing = [name for name in FILES if os.path.exists(os.path.join(directory, name))]
    if existing and not args.force:
        print(
            f"idnode: {directory} already holds {', '.join(existing)} (--force overwrites)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    os.makedirs(directory, mode=0o700, exist_ok=True)
    hosts = args.host or list(DEFAULT_HOSTS)
    ca = certificates.make_ca("idnode development CA", days=args.days)
    server = certificates.make_leaf(ca, hosts[0], hosts, days=args.days)
    client = certificates.make_leaf(ca, args.client_name, client=True, days=args.days)
    for name, issued in (("ca", ca), ("server", server), ("client", client)):
        certificates.write_private(os.path.join(directory, f"{name}.pem"), issued.cert_pem)
        certificates.write_private(os.path.join(directory, f"{name}.key"), issued.key_pem)
    path = os.path.abspath(directory)
    emit(
        args,
        {
            "directory": path,
            "files": [os.path.join(path, name) for name in FILES],
            "hosts": hosts,
            "server_sha256": server.fingerprint,
            "client_sha256": client.fingerprint,
        },
        _usage(path, hosts, client.fingerprint),
    )
    return 0


def _usage(path: str, hosts: list[str], client_sha256: str) -> str:
    return f"""wrote {path}/{{ca,server,client}}.{{pem,key}} (mode 0600) for {", ".join(hosts)}

serve gRPC and HTTP over TLS:
  idnode serve --tls-cert-file {path}/server.pem --tls-key-file {path}/server.key ...
  (config keys tls_cert_file, tls_key_file; SIGHUP reads the files again)
talk to it, verifying its certificate:
  idnode resolve 88.118.8/X --server 127.0.0.1:8600 --ca-file {path}/ca.pem
  curl --cacert {path}/ca.pem https://127.0.0.1:8000/api/handles/88.118.8/X
mutual TLS to a top-level node:
  idnode toplevel --tls-cert-file {path}/server.pem --tls-key-file {path}/server.key \\
      --client-ca-file {path}/ca.pem --require-client-cert
  idnode toplevel node add 88.118 --client-cert {path}/client.pem \\
      --ca-file {path}/ca.pem --cert-file {path}/client.pem --key-file {path}/client.key
  (pins the client certificate, SHA-256 {client_sha256})
  idnode serve --upstream 127.0.0.1:8700 --upstream-token <token> \\
      --upstream-ca-file {path}/ca.pem --upstream-cert-file {path}/client.pem \\
      --upstream-key-file {path}/client.key ...
The CA key ({path}/ca.key) signs anything: keep it private, or delete it."""
