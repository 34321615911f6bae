"""gRPC benchmark: registrations, imports and resolutions against a real `idnode serve`.

The reference is measured in the same run against the same server: a gRPC
health check, which does next to nothing, is the framework's ceiling for one
call. Resolve's rate is printed as a ratio to it. Medians of --repeat rounds.

    python -m loadtest.grpc_bench [--workers 2] [--clients 2] [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest import node as node_process
from loadtest.node import say
from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc

PREFIX_CODE = "77"


def measure_writes(
    node: node_process.Node, singles: int, batches: int, batch_size: int
) -> tuple[dict[str, float], list[str]]:
    """Registration rates, and the identifiers the batches registered."""
    auth = node.auth
    with grpc.insecure_channel(node.grpc) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        reply = registry.CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code=PREFIX_CODE), metadata=auth
        )
        prefix = reply.prefix
        started = time.perf_counter()
        for i in range(singles):
            registry.Create(
                handle_pb2.Record(
                    identifier=f"{prefix}/S{i}", values=node_process.product_values(i)
                ),
                metadata=auth,
            )
        single_rate = singles / (time.perf_counter() - started)
        say(f"single registrations: {single_rate:,.0f}/s over {singles}")
        started = time.perf_counter()
        for b in range(batches):
            records = [
                handle_pb2.Record(
                    identifier=f"{prefix}/B{b * batch_size + i}",
                    values=node_process.product_values(i),
                )
                for i in range(batch_size)
            ]
            registry.BatchRegister(
                registry_pb2.BatchRegisterRequest(records=records), metadata=auth
            )
            say(f"  batch import {b + 1}/{batches}", end="\r")
        import_rate = batches * batch_size / (time.perf_counter() - started)
        say(f"batch import: {import_rate:,.0f} identifiers/s over {batches * batch_size}")
    figures = {"single_registrations_per_s": single_rate, "import_identifiers_per_s": import_rate}
    return figures, [f"{prefix}/B{i}" for i in range(batches * batch_size)]


def _client(kind: str, address: str, seconds: float, names: list[str], out: Any) -> None:
    rng = random.Random(os.getpid())
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resolver = resolver_pb2_grpc.ResolverStub(channel)
        call: Callable[[], int]
        if kind == "health":
            check = health_pb2.HealthCheckRequest(service="")

            def call() -> int:
                health.Check(check)
                return 1
        elif kind == "resolve":

            def call() -> int:
                resolver.Resolve(resolver_pb2.ResolveRequest(identifier=rng.choice(names)))
                return 1
        else:

            def call() -> int:
                batch = [
                    resolver_pb2.ResolveRequest(identifier=rng.choice(names)) for _ in range(100)
                ]
                resolver.BatchResolve(resolver_pb2.BatchResolveRequest(requests=batch))
                return 100

        call()  # connect before the clock starts
        done = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            done += call()
    out.put(done / seconds)


def measure_rate(
    kind: str, node: node_process.Node, clients: int, seconds: float, names: list[str]
) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_client, args=(kind, node.grpc, seconds, names, queue))
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    rates = [queue.get(timeout=seconds + 60) for _ in processes]
    for process in processes:
        process.join(30)
    return float(sum(rates))


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="idnode-bench-")
    node = node_process.start(args.idnode, data_dir, args.workers, dns=False)
    try:
        say(f"node up: {args.workers} workers on {node.grpc}")
        figures, names = measure_writes(node, args.singles, args.batches, args.batch_size)
        results: dict[str, Any] = dict(figures)
        rounds: dict[str, list[float]] = {"health": [], "resolve": [], "batch": []}
        for round_number in range(1, args.repeat + 1):
            for kind in rounds:
                rate = measure_rate(kind, node, args.clients, args.seconds, names)
                rounds[kind].append(rate)
                say(f"round {round_number}/{args.repeat} {kind}: {rate:,.0f}/s")
        medians = {kind: statistics.median(rates) for kind, rates in rounds.items()}
        results.update(
            {
                "health_checks_per_s": medians["health"],
                "resolves_per_s": medians["resolve"],
                "batch_resolved_identifiers_per_s": medians["batch"],
                "resolve_to_empty_call_ratio": medians["resolve"] / medians["health"],
            }
        )
        return results
    finally:
        node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.grpc_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--idnode", default=node_process.default_idnode(), help="the idnode command to benchmark"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are printed")
    parser.add_argument("--singles", type=int, default=500, help="single registrations")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        print(json.dumps(results))
    else:
        width = max(len(k) for k in results)
        print(f"gRPC benchmark ({args.workers} workers, {args.clients} client processes, "
              f"median of {args.repeat})")  # fmt: skip
        for key, value in results.items():
            print(
                f"  {key:<{width}}  {value:,.2f}"
                if "ratio" in key
                else f"  {key:<{width}}  {value:,.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
