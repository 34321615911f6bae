"""Two builds of the node under one gRPC load, round by round: before and after a change.

    python -m loadtest.ab --before CMD --after CMD [--call CALL] [--rounds 9] [--seconds 3]

Both nodes run at once (one worker each, on the server CPUs) and are loaded in
turn, before, after, before, ..., by the same client processes, so a busy
machine weighs on both alike. Prints, per build, the median calls/s and server
CPU µs per call with their spread (min-max), and the ratios after/before taken
round by round (for batch calls: per identifier). Calls: resolve, batch_resolve,
create (durable single creates), batch_register (1,000 records a call, 4
clients). CMD is an `idnode` command, e.g. a script that runs another checkout's
`python -m idnode`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from collections.abc import Sequence

from loadtest import grpc_bench, machine
from loadtest import node as node_process
from loadtest.grpc_load import Call, Clients, create_enterprise, seed, warm
from loadtest.report import Sample, say, spread

CALLS = {
    "resolve": lambda prefix, resolvable: Call(
        "resolve", resolvable, count=grpc_bench.RESOLVE_IDENTIFIERS
    ),
    "batch_resolve": lambda prefix, resolvable: Call(
        "batch_resolve", resolvable, grpc_bench.RESOLVE_IDENTIFIERS,
        grpc_bench.BATCH_RESOLVE_IDENTIFIERS,
    ),
    "create": lambda prefix, resolvable: Call("create", f"{prefix}/s{{}}"),
    "batch_register": lambda prefix, resolvable: Call(
        "batch_register", f"{prefix}/b{{}}", batch=grpc_bench.BATCH_REGISTER_RECORDS
    ),
}  # fmt: skip
# Clients at once: as the bench loads each call.
CONCURRENCY = {"batch_register": grpc_bench.BATCH_REGISTER_CLIENTS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--before", required=True, metavar="CMD", help="the reference build")
    parser.add_argument("--after", required=True, metavar="CMD", help="the changed build")
    parser.add_argument("--call", choices=sorted(CALLS), default="resolve")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per build (default 9)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per round (default 3)")
    args = parser.parse_args(argv)
    concurrency = CONCURRENCY.get(args.call, grpc_bench.CONCURRENCY)
    pinning = machine.plan()
    pinning.pin_clients()
    say(f"pinning: {pinning.describe()}")
    names = ("before", "after")
    builds: list[tuple[node_process.Node, Clients, str, Call]] = []
    try:
        for command in (args.before, args.after):
            data_dir = tempfile.mkdtemp(prefix="idnode-ab-")
            node = node_process.start(command, data_dir, 1, dns=False, pinning=pinning)
            prefix = create_enterprise(node.grpc, node.token, grpc_bench.PREFIX_CODE)
            pattern = prefix + "/r{:07d}"
            seed(node.grpc, node.token, pattern, grpc_bench.RESOLVE_IDENTIFIERS)
            warm(node.grpc, pattern, grpc_bench.RESOLVE_IDENTIFIERS)
            clients = Clients(node.grpc, node.token, len(pinning.client) or 1)
            builds.append((node, clients, data_dir, CALLS[args.call](prefix, pattern)))
            clients.closed(builds[-1][3], 1.0, concurrency)  # warm-up
        samples: dict[str, list[Sample]] = {name: [] for name in names}
        for number in range(1, args.rounds + 1):
            for name, (node, clients, _, call) in zip(names, builds, strict=True):
                measurer = grpc_bench.Measurer(node, clients, len(pinning.client) or 1)
                samples[name].append(measurer.closed(call, args.seconds, concurrency))
            say(f"round {number}/{args.rounds}: " + ", ".join(
                f"{n} {samples[n][-1].value:,.0f}/s" for n in names
            ))  # fmt: skip
        print(_report(args.call, concurrency, samples["before"], samples["after"]))
    finally:
        for node, clients, data_dir, _ in builds:
            clients.close()
            node.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _report(call: str, concurrency: int, before: list[Sample], after: list[Sample]) -> str:
    rates = [a.value / b.value for a, b in zip(after, before, strict=True) if b.value]
    cpu = [
        a.server_cpu_us_per_op / b.server_cpu_us_per_op
        for a, b in zip(after, before, strict=True)
        if a.server_cpu_us_per_op and b.server_cpu_us_per_op
    ]
    lines = [f"{call}, {concurrency} concurrent clients, {len(before)} rounds each"]
    for name, samples in (("before", before), ("after", after)):
        cpus = [s.server_cpu_us_per_op for s in samples if s.server_cpu_us_per_op]
        lines.append(
            f"  {name:<6} {spread([s.value for s in samples], '/s')}, "
            f"server CPU {spread(cpus, ' µs')} per call"
        )
    if rates:
        lines.append(f"  after/before calls/s: {_ratio(rates)}")
    if cpu:
        lines.append(f"  after/before server CPU per call: {_ratio(cpu)}")
    return "\n".join(lines)


def _ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


if __name__ == "__main__":
    raise SystemExit(main())
