"""Read replicas behind HAProxy: resolve throughput with 1 and 2 replicas, and replica lag.

    python -m loadtest.replica_bench            # about 3 minutes; --json for one document

Starts a primary and two replicas (`idnode serve`, one worker each, loopback) and
Debian's HAProxy with deploy/haproxy/haproxy.cfg, then:

1. Resolve throughput (unary Resolve, client processes) measured in interleaved rounds:
   straight to one replica (the reference), through HAProxy to one replica (both server
   lines name it), through HAProxy to two replicas. Medians, spread, ratios to the
   reference. Every process shares the same cores, so on a 2-core machine a second
   replica mostly competes with the first for CPU: read the ratio, not the absolute.
2. Replica lag while the primary takes `--rate` registrations a second (BatchRegister of
   `--batch` records, paced): right after a write is acknowledged, a sampler reads it
   from a replica with `min_sequence` = its sequence; lag = when that read returned minus
   when the write was acknowledged. The same read against the primary, alternating in
   the same run, is the reference (one call's round trip).

Imports only the protocol: the nodes and HAProxy are subprocesses.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import grpc

from loadtest import grpc_load, haproxy
from loadtest import node as node_process
from loadtest.node import say
from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc

PREFIX = "88.118"


def credential(idnode: str, data_dir: str) -> str:
    result = subprocess.run(
        [idnode, "replica", "credential", "bench", "--data-dir", data_dir, "--json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return str(json.loads(result.stdout)["token"])


def start_haproxy(primary: str, first: str, second: str) -> haproxy.Balancer:
    """HAProxy before `first` and `second`, once resolutions pass through it."""
    balancer = haproxy.start(primary, (first, second))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _resolves(balancer.grpc):
            return balancer
        time.sleep(0.2)
    balancer.stop()
    raise SystemExit("HAProxy did not pass resolutions through")


def _resolves(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            resolver_pb2_grpc.ResolverStub(channel).Resolve(
                resolver_pb2.ResolveRequest(identifier=f"{PREFIX}/R0"), timeout=2
            )
        except grpc.RpcError:
            return False
    return True


# Throughput ------------------------------------------------------------------------------


def _client(address: str, seconds: float, count: int, out: Any) -> None:
    rng = random.Random(os.getpid())
    with grpc.insecure_channel(address) as channel:
        stub = resolver_pb2_grpc.ResolverStub(channel)
        requests = [resolver_pb2.ResolveRequest(identifier=f"{PREFIX}/R{i}") for i in range(count)]
        stub.Resolve(requests[0])  # connect before the clock starts
        done = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            stub.Resolve(rng.choice(requests))
            done += 1
    out.put(done / seconds)


def measure_rate(address: str, clients: int, seconds: float, count: int) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_client, args=(address, seconds, count, queue))
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    rates = [queue.get(timeout=seconds + 60) for _ in processes]
    for process in processes:
        process.join(30)
    return float(sum(rates))


# Lag ----------------------------------------------------------------------------------------


def measure_lag(
    primary: str, replica: str, auth: Any, rate: float, batch: int, seconds: float
) -> dict[str, list[float]]:
    """Pace BatchRegister at `rate` identifiers/s; right after an acknowledgement (whenever
    the sampler is free) read that write with its min_sequence, alternately from the
    replica and from the primary (the reference: one call's round trip)."""
    latest: list[tuple[int, float, str]] = []
    stop = threading.Event()
    fresh = threading.Event()  # a write was just acknowledged: sample it now
    samples: dict[str, list[float]] = {"replica": [], "primary": [], "unavailable": []}

    def write() -> None:
        with grpc.insecure_channel(primary) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)
            interval = batch / rate
            due = time.perf_counter()
            number = 0
            while not stop.is_set():
                records = [
                    handle_pb2.Record(identifier=f"{PREFIX}/L{number + i}",
                                      values=node_process.product_values(number + i))
                    for i in range(batch)
                ]  # fmt: skip
                reply = stub.BatchRegister(
                    registry_pb2.BatchRegisterRequest(records=records), metadata=auth, timeout=10
                )
                latest.append((reply.sequence, time.perf_counter(), records[-1].identifier))
                fresh.set()
                number += batch
                due += interval
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)

    def sample() -> None:
        channels = {name: grpc.insecure_channel(address)
                    for name, address in (("replica", replica), ("primary", primary))}  # fmt: skip
        stubs = {name: resolver_pb2_grpc.ResolverStub(c) for name, c in channels.items()}
        turn = 0
        while not stop.is_set():
            if not fresh.wait(1.0):
                continue
            fresh.clear()
            sequence, acknowledged, identifier = latest[-1]
            name = ("replica", "primary")[turn % 2]
            turn += 1
            request = resolver_pb2.ResolveRequest(identifier=identifier, min_sequence=sequence)
            try:
                stubs[name].Resolve(request, timeout=10)
                samples[name].append(time.perf_counter() - acknowledged)
            except grpc.RpcError:
                samples["unavailable"].append(time.perf_counter() - acknowledged)
        for channel in channels.values():
            channel.close()

    threads = [threading.Thread(target=write), threading.Thread(target=sample)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    samples["registrations"] = [float(len(latest) * batch)]
    return samples


# Run ----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    base = tempfile.mkdtemp(prefix="idnode-replica-bench-")
    procs: list[node_process.Node] = []
    balancers: list[haproxy.Balancer] = []
    try:
        primary = node_process.start(args.idnode, f"{base}/primary", 1, dns=False)
        procs.append(primary)
        say(f"primary up on {primary.grpc}; registering {args.identifiers} identifiers")
        grpc_load.seed(primary.grpc, primary.token, f"{PREFIX}/R{{}}", args.identifiers)
        token = credential(args.idnode, f"{base}/primary")
        following = ["--replica-of", primary.grpc, "--replica-token", token]
        for name in ("replica1", "replica2"):
            procs.append(
                node_process.start(args.idnode, f"{base}/{name}", 1, False, extra=following)
            )
        first, second = procs[1:]
        balancers.append(start_haproxy(primary.grpc, first.grpc, first.grpc))
        balancers.append(start_haproxy(primary.grpc, first.grpc, second.grpc))
        targets = {
            "direct": first.grpc,
            "haproxy_1_replica": balancers[0].grpc,
            "haproxy_2_replicas": balancers[1].grpc,
        }
        rates: dict[str, list[float]] = {name: [] for name in targets}
        for round_number in range(1, args.repeat + 1):
            for name, address in targets.items():
                rate = measure_rate(address, args.clients, args.seconds, args.identifiers)
                rates[name].append(rate)
                say(f"round {round_number}/{args.repeat} {name}: {rate:,.0f} resolves/s")
        results: dict[str, Any] = {"cores": os.cpu_count(), "clients": args.clients}
        reference = statistics.median(rates["direct"])
        for name, values in rates.items():
            results[f"{name}_resolves_per_s"] = statistics.median(values)
            results[f"{name}_spread"] = [min(values), max(values)]
            results[f"{name}_ratio_to_direct"] = statistics.median(values) / reference
        say(f"lag: {args.rate:,.0f} registrations/s for {args.lag_seconds:.0f} s")
        samples = measure_lag(
            primary.grpc, first.grpc, primary.auth, args.rate, args.batch, args.lag_seconds
        )
        for name in ("replica", "primary"):
            values = samples[name]
            results[f"lag_{name}_samples"] = len(values)
            # inclusive: within the samples (a few hundred), never past the largest
            cuts = (
                statistics.quantiles(values, n=100, method="inclusive")
                if len(values) > 1
                else values * 99
            )
            results[f"lag_{name}_p50_ms"] = (cuts[49] if cuts else 0.0) * 1000
            results[f"lag_{name}_p99_ms"] = (cuts[98] if cuts else 0.0) * 1000
            results[f"lag_{name}_max_ms"] = max(values, default=0.0) * 1000
        results["lag_unavailable_reads"] = len(samples["unavailable"])
        results["lag_registrations_per_s"] = samples["registrations"][0] / args.lag_seconds
        return results
    finally:
        for balancer in balancers:
            balancer.stop()
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.replica_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--idnode", default=node_process.default_idnode())
    parser.add_argument("--identifiers", type=int, default=10_000, help="resolved at random")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are printed")
    parser.add_argument("--rate", type=float, default=1000.0, help="registrations/s for lag")
    parser.add_argument("--batch", type=int, default=10, help="records per BatchRegister")
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"replica benchmark ({results['cores']} cores, {args.clients} client processes, "
          f"median of {args.repeat}; every process on the same cores)")  # fmt: skip
    for key, value in results.items():
        if isinstance(value, list):
            print(f"  {key:<38} {value[0]:,.0f} .. {value[1]:,.0f}")
        elif isinstance(value, float):
            print(f"  {key:<38} {value:,.2f}")
        else:
            print(f"  {key:<38} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
