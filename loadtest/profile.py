"""Where a node's worker spends its CPU under one load: a py-spy profile, summarised.

    python -m loadtest.profile resolve    # cached gRPC Resolve hits, 16 clients
    python -m loadtest.profile register   # BatchRegister of 1000 records, one client
    python -m loadtest.profile create     # durable single Creates, 16 clients
    python -m loadtest.profile health     # the empty call (health Check), 16 clients
    python -m loadtest.profile resolve --native --svg resolve.svg

Starts a node with one worker (pinned apart from the clients where there are
two CPUs), loads it, samples the worker with `py-spy record` meanwhile, and
prints the functions with the most samples of the thread holding the GIL (py-spy
--gil: where the interpreter's time goes), on their own (self) and with what
they call (total), and the worker's user and system CPU per call over the load (py-spy
sampling meanwhile: compare loads, e.g. create against health, run alike). py-spy needs
ptrace permission (root, or
kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from loadtest import grpc_bench, machine
from loadtest import node as node_process
from loadtest.grpc_load import Call, Clients, Outcome, create_enterprise, seed, warm
from loadtest.report import say

LOADS = {
    "resolve": (Call("resolve", "", count=grpc_bench.RESOLVE_IDENTIFIERS), 16),
    "register": (Call("batch_register", "", batch=grpc_bench.BATCH_REGISTER_RECORDS), 1),
    "create": (Call("create", ""), 16),
    "health": (Call("health"), 16),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("load", choices=sorted(LOADS))
    parser.add_argument("--seconds", type=float, default=10.0, help="sampling time (default 10)")
    parser.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    parser.add_argument("--native", action="store_true", help="include C frames (slower)")
    parser.add_argument("--svg", metavar="FILE", help="also write a flame graph")
    parser.add_argument("--idnode", default=node_process.default_idnode())
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed (it is in the loadtest extra)", file=sys.stderr)
        return 2
    pinning = machine.plan()
    with tempfile.TemporaryDirectory(prefix="idnode-profile-") as directory:
        node = node_process.start(
            args.idnode, str(Path(directory) / "data"), 1, dns=False, pinning=pinning
        )
        try:
            raw, cpu = _profile(args, spy, node, pinning, Path(directory))
        finally:
            node.stop()
    print(summary(raw, args.top, args.load))
    print(f"\nworker CPU per call over the load: {cpu}")
    return 0


def _profile(
    args: argparse.Namespace,
    spy: str,
    node: node_process.Node,
    pinning: machine.Pinning,
    root: Path,
) -> tuple[str, str]:
    prefix = create_enterprise(node.grpc, node.token, "76")
    call, concurrency = LOADS[args.load]
    pattern = f"{prefix}/r{{:07d}}" if args.load == "resolve" else f"{prefix}/b{{}}"
    if args.load == "resolve":
        seed(node.grpc, node.token, pattern, call.count)
        warm(node.grpc, pattern, call.count)
    call = Call(call.kind, pattern, call.count, call.batch)
    worker = next(pid for pid in node.pids() if machine.role(pid) == "worker")
    pinning.pin_clients()
    clients = Clients(node.grpc, node.token, len(pinning.client) or 1)
    try:
        clients.closed(call, 1.0, concurrency)  # connections made, code paths warm
        raw = root / "profile.txt"
        outputs = [("raw", str(raw))] + ([("flamegraph", args.svg)] if args.svg else [])
        loading = args.seconds * len(outputs) + 2
        outcomes: list[Outcome] = []
        loaded = threading.Thread(
            target=lambda: outcomes.append(clients.closed(call, loading, concurrency)),
            daemon=True,
        )
        user, system = machine.cpu_times(worker)
        loaded.start()
        say(f"profiling worker {worker} for {args.seconds:g} s under the {args.load} load")
        command = [spy, "record", "--pid", str(worker), "--duration", str(int(args.seconds)),
                   "--rate", "250", "--gil", "--nonblocking"]  # fmt: skip
        if args.native:
            command.append("--native")
        for form, path in outputs:  # one after the other: py-spy writes one format a run
            subprocess.run([*command, "--format", form, "--output", path], check=True,
                           capture_output=True, timeout=args.seconds + 60)  # fmt: skip
        loaded.join()
        user_after, system_after = machine.cpu_times(worker)
        calls = max(outcomes[0].operations if outcomes else 0, 1)
        cpu = (
            f"user {(user_after - user) / calls * 1e6:.0f} µs, "
            f"system {(system_after - system) / calls * 1e6:.0f} µs"
        )
        return raw.read_text(), cpu
    finally:
        clients.close()


def summary(raw: str, top: int, load: str) -> str:
    """The functions with most samples, on their own and including what they call."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"py-spy samples of the worker under the {load} load: {samples}", "", "self:"]
    lines += [f"  {100 * n / samples:5.1f} %  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total (with callees):"]
    lines += [f"  {100 * n / samples:5.1f} %  {frame}" for frame, n in total.most_common(top)]
    ours = [(frame, n) for frame, n in total.most_common() if _is_ours(frame)]
    lines += ["", "idnode's own functions, total (with callees):"]
    lines += [f"  {100 * n / samples:5.1f} %  {frame}" for frame, n in ours[:top]]
    return "\n".join(lines)


def _function(frame: str) -> str:
    """`name (file:line)` as `name (file)`: samples add up per function, not per line."""
    name, _, place = frame.rpartition(" (")
    return f"{name} ({place.rpartition(':')[0]})" if ":" in place else frame


def _is_ours(frame: str) -> bool:
    """A frame of the node's own code (py-spy names files relative to the project)."""
    place = frame.rpartition("(")[2]
    return place.startswith(("resolver/", "registry/", "metrics/", "sync/", "idnode/"))


if __name__ == "__main__":
    sys.exit(main())
