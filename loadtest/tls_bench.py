"""What TLS costs the gRPC face: the same node plain and with TLS, measured interleaved.

Two nodes of one worker each, one plain and one serving TLS with a certificate from
`idnode dev-cert` (ECDSA P-256), hold the same identifiers. Rounds alternate between
them; each round measures, from one client process:
- resolves a second over one open channel (what TLS adds to every call), and
- new connections a second, each a handshake and one Resolve (what TLS adds per
  connection: the handshake).
Printed: medians, spread (min-max) and the TLS / plain ratio of the medians.

    python -m loadtest.tls_bench [--seconds 3] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import grpc

from loadtest import node as node_process
from loadtest.node import say
from loadtest.report import Row, Sample
from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc

IDENTIFIERS = 1000


def _channel(address: str, ca_file: str) -> grpc.Channel:
    if not ca_file:
        return grpc.insecure_channel(address)
    with open(ca_file, "rb") as handle:
        roots = handle.read()
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(roots))


def _seed(node: node_process.Node, ca_file: str) -> list[str]:
    with _channel(node.grpc, ca_file) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        prefix = registry.CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code="77"), metadata=node.auth
        ).prefix
        names = [f"{prefix}/T{i}" for i in range(IDENTIFIERS)]
        records = [
            handle_pb2.Record(identifier=name, values=node_process.product_values(i))
            for i, name in enumerate(names)
        ]
        registry.BatchRegister(
            registry_pb2.BatchRegisterRequest(records=records), metadata=node.auth
        )
    return names


def _client(
    kind: str, address: str, ca_file: str, seconds: float, names: list[str], out: Any
) -> None:
    request = resolver_pb2.ResolveRequest(identifier=names[0])
    done = 0
    if kind == "calls":
        with _channel(address, ca_file) as channel:
            stub = resolver_pb2_grpc.ResolverStub(channel)
            stub.Resolve(request)  # connected before the clock starts
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                stub.Resolve(request)
                done += 1
    else:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            with _channel(address, ca_file) as channel:
                resolver_pb2_grpc.ResolverStub(channel).Resolve(request)
            done += 1
    out.put(done / seconds)


def _rate(kind: str, address: str, ca_file: str, seconds: float, names: list[str]) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_client, args=(kind, address, ca_file, seconds, names, queue))
    process.start()
    rate = float(queue.get(timeout=seconds + 60))
    process.join(30)
    return rate


def measure(idnode: str, rounds: int, seconds: float) -> dict[str, list[float]]:
    """Rates per round: `calls_plain`, `calls_tls`, `connections_plain`, `connections_tls`
    (each pair measured back to back, plain first)."""
    work = tempfile.mkdtemp(prefix="idnode-tls-bench-")
    pki = os.path.join(work, "pki")
    subprocess.run([idnode, "dev-cert", pki], check=True, capture_output=True)
    ca_file = os.path.join(pki, "ca.pem")
    tls_flags = ["--tls-cert-file", os.path.join(pki, "server.pem"),
                 "--tls-key-file", os.path.join(pki, "server.key")]  # fmt: skip
    plain = node_process.start(idnode, os.path.join(work, "plain"), 1, dns=False)
    secure = node_process.start(idnode, os.path.join(work, "tls"), 1, dns=False, extra=tls_flags)
    try:
        names = _seed(plain, "")
        _seed(secure, ca_file)
        rates: dict[str, list[float]] = {
            f"{kind}_{mode}": [] for kind in ("calls", "connections") for mode in ("plain", "tls")
        }
        for round_number in range(1, rounds + 1):
            for kind in ("calls", "connections"):
                for mode, node, ca in (("plain", plain, ""), ("tls", secure, ca_file)):
                    rate = _rate(kind, node.grpc, ca, seconds, names)
                    rates[f"{kind}_{mode}"].append(rate)
                    say(f"round {round_number}/{rounds} {kind} {mode}: {rate:,.0f}/s")
        return rates
    finally:
        plain.stop()
        secure.stop()
        shutil.rmtree(work, ignore_errors=True)


def rows(idnode: str, rounds: int, seconds: float) -> list[Row]:
    """The TLS rows of `make bench`'s table: TLS (subject) against plain (reference)."""
    rates = measure(idnode, rounds, seconds)
    return [
        Row(
            f"gRPC Resolve with TLS, {kind}",
            "/s",
            [Sample(v) for v in rates[f"{key}_tls"]],
            [Sample(v) for v in rates[f"{key}_plain"]],
            reference_name="the same without TLS",
        )
        for key, kind in (("calls", "open channel"), ("connections", "new connection each"))
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    rates = measure(args.idnode, args.repeat, args.seconds)
    results: dict[str, Any] = {}
    for key, found in rates.items():
        results[f"{key}_per_s"] = statistics.median(found)
        results[f"{key}_spread"] = f"{min(found):,.0f}-{max(found):,.0f}"
    for kind in ("calls", "connections"):
        results[f"{kind}_tls_to_plain_ratio"] = (
            results[f"{kind}_tls_per_s"] / results[f"{kind}_plain_per_s"]
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.tls_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--idnode", default=node_process.default_idnode(), help="the idnode command to benchmark"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; medians are printed")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"TLS cost on gRPC (1 worker per node, 1 client process, median of {args.repeat})")
    width = max(len(k) for k in results)
    for key, value in results.items():
        if isinstance(value, str):
            print(f"  {key:<{width}}  {value}")
        elif "ratio" in key:
            print(f"  {key:<{width}}  {value:.2f}")
        else:
            print(f"  {key:<{width}}  {value:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
