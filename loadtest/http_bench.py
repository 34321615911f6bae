"""HTTP benchmark: `wrk` against a real `idnode serve`, cached hits vs the server's floor.

In the same run, against the same node and server stack, interleaved rounds of:
  floor     GET /healthz          (fixed bytes: routing and the server, nothing else)
  redirect  GET /{identifier}     (302 from the encoded-response cache)
  rest      GET /api/handles/{identifier}   (Handle JSON from the same cache)
over --identifiers identifiers, cycled by a wrk script, warmed first so every
worker holds them. Printed: requests/s (median, min-max), the ratio to the
floor, and the workers' CPU per request from /proc. Targets: ratio >= 0.9,
CPU per hit under 60 µs.

    python -m loadtest.http_bench [--workers 2] [--seconds 5] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from loadtest import node as node_process
from loadtest.node import say

PREFIX = "88.118"
KINDS = ("floor", "redirect", "rest")
TARGET_RATIO = 0.9
TARGET_CPU_US = 60.0


def register(address: str, token: str, count: int) -> list[str]:
    """PUT `count` identifiers over the REST API; their names."""
    host, _, port = address.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    names = [f"{PREFIX}/HB{i}" for i in range(count)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for i, name in enumerate(names):
        values = [{"index": v.index, "type": v.type, "data": v.data.decode()}
                  for v in node_process.product_values(i)]  # fmt: skip
        connection.request("PUT", f"/api/handles/{name}", json.dumps({"values": values}), headers)
        response = connection.getresponse()
        response.read()
        if response.status not in (200, 201):
            raise SystemExit(f"registering {name} failed: HTTP {response.status}")
    connection.close()
    return names


def script(directory: str, paths: list[str]) -> str:
    """A wrk Lua script cycling through `paths`."""
    path = os.path.join(directory, f"paths-{len(paths)}-{abs(hash(paths[0]))}.lua")
    listed = ",\n".join(json.dumps(p) for p in paths)
    with open(path, "w") as handle:
        handle.write(
            f"local paths = {{\n{listed}\n}}\nlocal i = 0\n"
            "request = function()\n  i = i % #paths + 1\n"
            '  return wrk.format("GET", paths[i])\nend\n'
        )
    return path


def wrk(url: str, lua: str, seconds: float, connections: int) -> tuple[int, int]:
    """(requests, error responses) of one wrk run (1 thread, keep-alive)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", lua, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"(\d+) requests in", out)
    if found is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(found.group(1)), int(errors.group(1)) if errors else 0


def workers_cpu_seconds(master: int) -> float:
    """CPU (user + system) of the master's worker processes, all their threads."""
    total = 0.0
    with open(f"/proc/{master}/task/{master}/children") as handle:
        children = [int(pid) for pid in handle.read().split()]
    for pid in children:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(
    node: node_process.Node, scripts: dict[str, str], args: argparse.Namespace
) -> dict[str, list[tuple[float, float]]]:
    url = "http://" + node.ready["http"][0]
    samples: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    for kind in KINDS:  # warm-up: every worker fills its cache, the interpreter settles
        wrk(url, scripts[kind], 2, args.connections)
    for round_number in range(args.rounds):
        order = KINDS if round_number % 2 == 0 else tuple(reversed(KINDS))
        for kind in order:
            cpu_before = workers_cpu_seconds(node.process.pid)
            started = time.perf_counter()
            requests, errors = wrk(url, scripts[kind], args.seconds, args.connections)
            elapsed = time.perf_counter() - started
            cpu = workers_cpu_seconds(node.process.pid) - cpu_before
            if errors:
                raise SystemExit(f"{kind}: {errors} error responses")
            rate, cpu_us = requests / elapsed, cpu / max(requests, 1) * 1e6
            samples[kind].append((rate, cpu_us))
            say(f"round {round_number + 1}/{args.rounds} {kind}: {rate:,.0f}/s, {cpu_us:.1f} µs")
    return samples


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="idnode-http-bench-")
    node = node_process.start(args.idnode, data_dir, args.workers, dns=False, http=True)
    try:
        names = register(node.ready["http"][0], node.token, args.identifiers)
        say(f"registered {len(names)} identifiers; {args.workers} workers")
        scripts = {
            "floor": script(data_dir, ["/healthz"]),
            "redirect": script(data_dir, [f"/{n}" for n in names]),
            "rest": script(data_dir, [f"/api/handles/{n}" for n in names]),
        }
        samples = measure(node, scripts, args)
    finally:
        node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    floor = statistics.median(s[0] for s in samples["floor"])
    figures: dict[str, Any] = {}
    for kind in KINDS:
        rates = [s[0] for s in samples[kind]]
        cpus = [s[1] for s in samples[kind]]
        figures[kind] = {
            "requests_per_s": statistics.median(rates),
            "requests_per_s_min": min(rates),
            "requests_per_s_max": max(rates),
            "ratio_to_floor": statistics.median(rates) / floor,
            "cpu_us_per_request": statistics.median(cpus),
            "cpu_us_min": min(cpus),
            "cpu_us_max": max(cpus),
        }
    return figures


def report(figures: dict[str, Any]) -> None:
    print(
        f"{'request':<10} {'requests/s (min-max)':>28} {'x floor':>8} {'CPU µs/req (min-max)':>24}"
    )
    for kind, f in figures.items():
        print(
            f"{kind:<10} {f['requests_per_s']:>10,.0f} ({f['requests_per_s_min']:,.0f}-"
            f"{f['requests_per_s_max']:,.0f}) {f['ratio_to_floor']:>8.2f} "
            f"{f['cpu_us_per_request']:>10.1f} ({f['cpu_us_min']:.1f}-{f['cpu_us_max']:.1f})"
        )
    for kind in ("redirect", "rest"):
        f = figures[kind]
        ok = f["ratio_to_floor"] >= TARGET_RATIO and f["cpu_us_per_request"] < TARGET_CPU_US
        print(f"{kind}: target >= {TARGET_RATIO}x floor and < {TARGET_CPU_US:.0f} µs: "
              f"{'met' if ok else 'NOT met'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.http_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--idnode", default=node_process.default_idnode(), help="idnode command")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--identifiers", type=int, default=1000, help="cached identifiers cycled")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("skipped: wrk is needed (make system-deps installs it)")
        return 0
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
