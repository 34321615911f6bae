"""`make loadtest`: Locust's gRPC, DNS and HTTP users against a node for a fixed time, headless.

    python -m loadtest.locust_run [--seconds 60] [--users 50] [--seed 10000]
    python -m loadtest.locust_run --grpc-address H:P --dns-address H:P \\
        --identifiers-file ids.txt [--token T] [--zone Z] [--http-url http://H:P]

Without --grpc-address it starts a node on loopback ports with every face
(pinned away from Locust where there are two CPUs), allocates an enterprise
prefix and registers --seed identifiers for the users to resolve; with it, the
node is one already running (HTTP users only with --http-url). Exit 1 when any request failed or
a user class sent none; the per-request table is Locust's own.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest import machine
from loadtest import node as node_process
from loadtest.grpc_load import create_enterprise, seed
from loadtest.report import say

PREFIX_CODE = "79"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class Target:
    """The node under load, as the users need it."""

    grpc: str
    dns: str
    zone: str
    http_url: str  # "" : no HTTP users
    identifiers: str  # file of identifiers that exist
    token: str  # "" : no registrations

    def users(self) -> list[str]:
        return ["GrpcUser", "DnsUser"] + (["HttpResolverUser"] if self.http_url else [])

    def request_types(self) -> tuple[str, ...]:
        """What Locust reports each user's requests as (the HTTP user's: their method)."""
        return ("grpc", "dns") + (("GET",) if self.http_url else ())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if bool(args.grpc_address) != bool(args.identifiers_file):
        print("loadtest: a running node needs --grpc-address and --identifiers-file together")
        return 2
    if args.grpc_address:
        given = Target(args.grpc_address, args.dns_address, args.zone, args.http_url,
                       args.identifiers_file, args.token)  # fmt: skip
        return _run_locust(args, given)
    pinning = machine.plan()
    with tempfile.TemporaryDirectory(prefix="idnode-loadtest-") as directory:
        node = node_process.start(
            args.idnode, os.path.join(directory, "data"), pinning.server_workers(), dns=True,
            http=True, pinning=pinning,
        )  # fmt: skip
        try:
            prefix = create_enterprise(node.grpc, node.token, PREFIX_CODE)
            pattern = f"{prefix}/l{{:07d}}"
            seed(node.grpc, node.token, pattern, args.seed)
            identifiers = os.path.join(directory, "identifiers.txt")
            with open(identifiers, "w", encoding="utf-8") as handle:
                handle.writelines(pattern.format(i) + "\n" for i in range(args.seed))
            host, port = node.dns
            http_url = f"http://{node.ready['http'][0]}"
            started = Target(node.grpc, f"{host}:{port}", str(node.ready["zone"]), http_url,
                             identifiers, node.token)  # fmt: skip
            say(f"node up: gRPC {node.grpc}, DNS {host}:{port}, HTTP {started.http_url}, "
                f"{args.seed:,} identifiers")  # fmt: skip
            pinning.pin_clients()
            return _run_locust(args, started)
        finally:
            node.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.locust_run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=int, default=60, help="run time (default 60)")
    parser.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started a second")
    parser.add_argument("--seed", type=int, default=10_000, help="identifiers to register")
    parser.add_argument("--idnode", default=node_process.default_idnode())
    parser.add_argument("--grpc-address", default="", help="a running node's gRPC HOST:PORT")
    parser.add_argument("--dns-address", default="127.0.0.1:8653", help="its DNS HOST:PORT")
    parser.add_argument("--zone", default="id.example.", help="its DNS zone")
    parser.add_argument("--http-url", default="", help="its HTTP face, http://HOST:PORT "
                        "(default: none, no HTTP users)")  # fmt: skip
    parser.add_argument("--identifiers-file", default="", help="identifiers that exist there")
    parser.add_argument("--token", default=os.environ.get("IDNODE_TOKEN", ""),
                        help="token for registrations (default $IDNODE_TOKEN)")  # fmt: skip
    return parser


def _run_locust(args: argparse.Namespace, target: Target) -> int:
    locust = shutil.which("locust", path=os.path.dirname(sys.executable)) or "locust"
    environment = {**os.environ, "IDNODE_LOCUST_TOKEN": target.token}  # not on the command line
    say(f"locust: {args.users} users for {args.seconds} s")
    with tempfile.TemporaryDirectory(prefix="idnode-locust-") as directory:
        # --csv, not --json: Locust's JSON report resets the per-request figures it reports,
        # so its own summary table would then show zeros.
        csv_prefix = os.path.join(directory, "run")
        command = [
            locust, "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--csv", csv_prefix,
            "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s",
            "--stop-timeout", "5", "--grpc-address", target.grpc, "--dns-address", target.dns,
            "--zone", target.zone, "--identifiers", target.identifiers, *target.users(),
        ]  # fmt: skip
        if target.http_url:
            command += ["--host", target.http_url]
        done = subprocess.run(command, env=environment, check=False)
        stats = read_stats(csv_prefix + "_stats.csv")
    problems = verdict(stats, target.request_types())
    for problem in problems:
        print(f"loadtest: {problem}", file=sys.stderr)
    return 1 if problems or done.returncode else 0


def read_stats(path: str) -> list[dict[str, Any]]:
    """Locust's per-request rows (method, name, num_requests, num_failures); none if absent."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            {
                "method": row["Type"],
                "name": row["Name"],
                "num_requests": int(row["Request Count"]),
                "num_failures": int(row["Failure Count"]),
            }
            for row in csv.DictReader(handle)
            if row["Name"] != "Aggregated"
        ]


def verdict(stats: list[dict[str, Any]], kinds: tuple[str, ...] = ("grpc", "dns")) -> list[str]:
    """What makes the run a failure: failed requests, or a kind of user that sent nothing."""
    problems = []
    for entry in stats:
        if entry["num_failures"]:
            problems.append(
                f"{entry['num_failures']} of {entry['num_requests']} "
                f"{entry['method']} {entry['name']} requests failed"
            )
    for kind in kinds:
        if not sum(entry["num_requests"] for entry in stats if entry["method"] == kind):
            problems.append(f"no {kind} requests were made")
    return problems


if __name__ == "__main__":
    sys.exit(main())
