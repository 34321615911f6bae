"""CPU per query of the wire handler on each path: `python -m tests.dns.measure_cpu --help`.

Paths: a cache hit from loopback (never rate-limited), a hit from a client
network below its RRL limit, a hit carrying a DNS cookie, a miss that reads the
store and builds an answer, NXDOMAIN for names never asked before (a
random-name flood) and NXDOMAIN for names asked before (negative cache hits).

Default: CPU time (`time.process_time`) per query, rounds interleaved path by
path, median and min-max printed. `--instructions` counts instructions instead,
under valgrind's callgrind: each path runs twice (N and 3N queries, in separate
processes) and the difference over 2N is the count per query, which other work
on the machine does not change (Python's hash seed is fixed).
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dns.edns
import dns.message

from proto import handle_pb2
from registry.store import Store, StoreOptions
from resolver.dns import dns_name
from resolver.dns.handler import Handler
from resolver.follow import ChangeFollower
from tests.dns.nodes import ZONE, make_node, make_options, value

IDENTIFIERS = 20_000
HOT_NAMES = 1000  # the names asked again and again on the hit paths
PATHS = ("hit", "hit_rrl", "hit_cookie", "miss", "nxdomain", "nxdomain_cached")
COOKIE = bytes.fromhex("0123456789abcdef")
OUTSIDE = "192.0.2.7"  # not loopback: the rate limiter counts it


def populate(root: Path, identifiers: int) -> str:
    """A store with `identifiers` published identifiers; returns its path."""
    node = make_node(root)
    batch = [
        handle_pb2.Record(
            identifier=f"88.118.8/P{i:08d}",
            values=[value(1, "URL", f"https://example.com/{i}"), value(2, "batch", "B1")],
        )
        for i in range(identifiers)
    ]
    for start in range(0, identifiers, 5000):
        node.registry.batch_register(node.admin, batch[start : start + 5000])
    path = node.store.path
    node.store.close()
    return path


def _query(name: str, cookie: bool = False) -> bytes:
    options: list[dns.edns.Option] = (
        [dns.edns.GenericOption(dns.edns.COOKIE, COOKIE)] if cookie else []
    )
    return dns.message.make_query(name, "TXT", use_edns=0, options=options).to_wire()


def _names(identifiers: int) -> list[str]:
    return [str(dns_name(f"88.118.8/P{i:08d}", ZONE)) for i in range(identifiers)]


def _random_names(count: int, seed: int) -> list[str]:
    pick = random.Random(seed)
    return [f"m{pick.getrandbits(60):x}.8.118.88.{ZONE}" for _ in range(count)]


class Bench:
    """A handler over a populated store and the query lists of every path."""

    def __init__(self, data_dir: str, identifiers: int) -> None:
        self.store = Store(data_dir, StoreOptions(map_size_bytes=64 << 20, durable=False))
        follower = ChangeFollower(self.store)
        options = make_options(rrl_responses_per_second=1_000_000_000)
        self.handler = Handler(self.store, follower, options)
        follower.poll()
        self._identifiers = identifiers
        self._round = 0

    @functools.cached_property
    def hot(self) -> list[bytes]:
        return [_query(name) for name in _names(min(HOT_NAMES, self._identifiers))]

    @functools.cached_property
    def hot_cookie(self) -> list[bytes]:
        names = _names(min(HOT_NAMES, self._identifiers))
        return [_query(name, cookie=True) for name in names]

    @functools.cached_property
    def all(self) -> list[bytes]:
        return [_query(name) for name in _names(self._identifiers)]

    @functools.cached_property
    def missing(self) -> list[bytes]:
        return [_query(name) for name in _random_names(HOT_NAMES, 1)]

    def queries(self, path: str, count: int) -> tuple[list[bytes], str, Callable[[], None]]:
        """The queries of one round of `path`, the source address, and what to do first."""
        self._round += 1
        nothing: Callable[[], None] = lambda: None  # noqa: E731
        if path in ("hit", "hit_rrl", "nxdomain_cached"):
            pool = self.missing if path == "nxdomain_cached" else self.hot
            source = OUTSIDE if path == "hit_rrl" else "127.0.0.1"
            return [pool[i % len(pool)] for i in range(count)], source, self._warm(pool, source)
        if path == "hit_cookie":
            pool = self.hot_cookie
            return [pool[i % len(pool)] for i in range(count)], OUTSIDE, self._warm(pool, OUTSIDE)
        if path == "miss":
            return [self.all[i % len(self.all)] for i in range(count)], "127.0.0.1", self._clear
        if path == "nxdomain":
            fresh = [_query(name) for name in _random_names(count, 1000 + self._round)]
            return fresh, "127.0.0.1", nothing
        raise ValueError(path)

    def _warm(self, pool: list[bytes], source: str) -> Callable[[], None]:
        def warm() -> None:
            for query in pool:
                self.handler.handle_wire(query, source)

        return warm

    def _clear(self) -> None:
        self.handler.cache.clear()

    def run(self, queries: list[bytes], source: str) -> None:
        handle = self.handler.handle_wire
        for query in queries:
            handle(query, source)


def cpu_rounds(bench: Bench, paths: list[str], rounds: int, count: int) -> dict[str, list[float]]:
    """Seconds of CPU per query, one figure per round, the paths interleaved in each round."""
    results: dict[str, list[float]] = {path: [] for path in paths}
    for _round in range(rounds):
        for path in paths:
            queries, source, prepare = bench.queries(path, count)
            prepare()
            started = time.process_time()
            bench.run(queries, source)
            results[path].append((time.process_time() - started) / len(queries))
    return results


def dnspython_cpu(count: int) -> float:
    """For scale: dnspython from_wire + make_response + to_wire, no lookup."""
    queries = [_query(name) for name in _names(count)]
    started = time.process_time()
    for query in queries:
        dns.message.make_response(dns.message.from_wire(query)).to_wire()
    return (time.process_time() - started) / count


def instructions(data_dir: str, identifiers: int, path: str, count: int) -> float:
    """Instructions per query on `path`, from two callgrind runs of count and 3 * count."""
    totals = []
    for queries in (count, 3 * count):  # both build 3 * count queries: only the answering differs
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        command += [sys.executable, "-m", "tests.dns.measure_cpu", "--child", data_dir]
        command += [str(identifiers), path, str(3 * count), str(queries)]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise SystemExit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / (2 * count)


def _child(data_dir: str, identifiers: int, path: str, built: int, answered: int) -> None:
    bench = Bench(data_dir, identifiers)
    queries, source, prepare = bench.queries(path, built)
    prepare()
    bench.run(queries[:answered], source)


def _spread(values: list[float], scale: float) -> str:
    median = statistics.median(values) * scale
    return f"{median:8.2f}  ({min(values) * scale:.2f}-{max(values) * scale:.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.dns.measure_cpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=20_000, help="per path and round")
    parser.add_argument("--identifiers", type=int, help=f"default {IDENTIFIERS}, 9000 counting")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help="comma-separated: " + ", ".join(PATHS)
    )
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    args = parser.parse_args(argv)
    paths = args.paths.split(",")
    identifiers = args.identifiers or (9000 if args.instructions else IDENTIFIERS)
    with tempfile.TemporaryDirectory() as directory:
        data_dir = populate(Path(directory), identifiers)
        if args.instructions:
            count = min(args.queries, 3000)
            print(f"instructions per query (callgrind, {count} and {3 * count} queries):")
            for path in paths:
                figure = instructions(data_dir, identifiers, path, count)
                print(f"  {path:16} {figure:10,.0f}", flush=True)
            return
        bench = Bench(data_dir, identifiers)
        results = cpu_rounds(bench, paths, args.rounds, args.queries)
        print(f"CPU per query, us: median (min-max) of {args.rounds} interleaved rounds")
        for path in paths:
            print(f"  {path:16} {_spread(results[path], 1e6)}")
        print(f"  for scale, dnspython parse + render: {dnspython_cpu(5000) * 1e6:.1f} us")
        bench.store.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
