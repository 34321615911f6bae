"""`idnode import` end to end: identifiers a second, and the CPU of the client and the node.

    .venv/bin/python -m tests.node.measure_import [--identifiers 100000] [--rounds 3] [--workers 2]
        [--idnode CMD]

Starts a node (as `make bench` does), writes a CSV of two rows per identifier (a URL and
a batch value, as the benchmarks register), and imports fresh identifiers each round with
the `idnode` command installed beside this interpreter (or CMD, e.g. a script running
another checkout's `python -m idnode`); prints each round and the median.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

from loadtest import node as node_process
from loadtest.grpc_load import create_enterprise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identifiers", type=int, default=100_000, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="imports, each of new identifiers")
    parser.add_argument("--workers", type=int, default=2, help="node worker processes")
    parser.add_argument("--idnode", default=node_process.default_idnode(), help="node and client")
    args = parser.parse_args()
    idnode = args.idnode
    data_dir = tempfile.mkdtemp(prefix="idnode-measure-import-")
    node = node_process.start(idnode, data_dir, args.workers, dns=False)
    rates = []
    try:
        prefix = create_enterprise(node.grpc, node.token, "77")
        for round_number in range(args.rounds):
            path = os.path.join(data_dir, f"round{round_number}.csv")
            _write_csv(path, f"{prefix}/r{round_number}-", args.identifiers)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            node_cpu, started = node.cpu_seconds(), time.perf_counter()
            done = subprocess.run(
                [idnode, "import", path, "--server", node.grpc, "--token", node.token],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                raise SystemExit(f"idnode import failed: {done.stderr.strip()}")
            client = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            rates.append(args.identifiers / seconds)
            print(
                f"round {round_number + 1}/{args.rounds}: {rates[-1]:,.0f} identifiers/s; CPU per "
                f"identifier: client {client / args.identifiers * 1e6:.1f} µs, node "
                f"{(node.cpu_seconds() - node_cpu) / args.identifiers * 1e6:.1f} µs",
                flush=True,
            )
    finally:
        node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"median {statistics.median(rates):,.0f} identifiers/s ({min(rates):,.0f}–{max(rates):,.0f})"
    )


def _write_csv(path: str, stem: str, identifiers: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("identifier,type,data\n")
        for i in range(identifiers):
            identifier = f"{stem}{i:09d}"
            handle.write(f"{identifier},URL,https://example.com/p/{identifier}\n")
            handle.write(f"{identifier},batch,2026-11\n")


if __name__ == "__main__":
    main()
