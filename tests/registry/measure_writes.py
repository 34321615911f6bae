"""Write throughput of the store in one process: group commit against one commit per write,
and batch register's CPU per identifier. Durable stores (an fsync per commit), as served.

    .venv/bin/python -m tests.registry.measure_writes [--rounds 5] [--seconds 3] [--threads 16]

Single creates run from --threads threads through Registry.create, alternately with group
commit (as the node runs) and with groups of one write (what every write cost before:
one commit and its fsyncs each); each figure is the median of the rounds with its spread,
and the ratio is taken round by round. Batch register sends batches of 1,000 two-value
records, as `idnode import` does. No gRPC: for the node's figures see `make bench`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator

from proto import handle_pb2
from registry import accounts, groupcommit
from registry.accounts import Account
from registry.registry import Registry
from registry.store import Store, StoreOptions

HandleValue = handle_pb2.HandleValue
BATCH = 1000
_serial = itertools.count()


def product(identifier: str) -> list[HandleValue]:
    return [
        HandleValue(index=1, type="URL", data=f"https://example.com/p/{identifier}".encode()),
        HandleValue(index=2, type="batch", data=b"2026-11"),
    ]


@contextlib.contextmanager
def groups_of(writes: int) -> Iterator[None]:
    saved = groupcommit.MAX_GROUP_WRITES
    groupcommit.MAX_GROUP_WRITES = writes
    try:
        yield
    finally:
        groupcommit.MAX_GROUP_WRITES = saved


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def creates(
    registry: Registry, caller: Account, threads: int, seconds: float
) -> tuple[float, float]:
    """Creates a second from `threads` threads, and CPU microseconds per create."""
    done = [0] * threads
    stop = threading.Event()

    def run(number: int) -> None:
        while not stop.is_set():
            name = f"88.118.7/s{next(_serial)}"
            registry.create(caller, name, product(name))
            done[number] += 1

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    started, cpu = time.perf_counter(), cpu_seconds()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
    return sum(done) / elapsed, used / max(sum(done), 1) * 1e6


def batches(registry: Registry, caller: Account, seconds: float) -> tuple[float, float]:
    """Identifiers a second through batch register, and CPU microseconds per identifier;
    only the calls are timed, not making their records."""
    count = 0
    elapsed = used = 0.0
    while elapsed < seconds:
        records = []
        for _ in range(BATCH):
            name = f"88.118.7/b{next(_serial):09d}"
            records.append(handle_pb2.Record(identifier=name, values=product(name)))
        started, cpu = time.perf_counter(), cpu_seconds()
        result = registry.batch_register(caller, records)
        elapsed += time.perf_counter() - started
        used += cpu_seconds() - cpu
        assert result.created == BATCH, result.errors[:3]
        count += BATCH
    return count / elapsed, used / count * 1e6


def spread(label: str, figures: list[float], unit: str) -> str:
    return (
        f"{label}: {statistics.median(figures):,.2f}{unit} "
        f"(min {min(figures):,.2f}, max {max(figures):,.2f}, {len(figures)} rounds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="measure-writes-") as data_dir:
        store = Store(data_dir, StoreOptions(durable=True))
        try:
            registry = Registry(store, "88.118")
            registry.ensure_node_prefix()
            token = accounts.ensure_admin(store, None)
            assert token is not None
            admin = accounts.authenticate(store, token)
            registry.create_enterprise(admin, code="7")
            measure(registry, admin, args)
        finally:
            store.close()


def measure(registry: Registry, admin: Account, args: argparse.Namespace) -> None:
    rows: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    def run() -> tuple[float, float]:
        return creates(registry, admin, args.threads, args.seconds)

    for number in range(1, args.rounds + 1):
        with groups_of(1):
            alone, alone_cpu = run()
        grouped, grouped_cpu = run()
        imported, imported_cpu = batches(registry, admin, args.seconds)
        for name, value in (
            ("alone", alone), ("grouped", grouped), ("ratio", grouped / alone),
            ("alone_cpu", alone_cpu), ("grouped_cpu", grouped_cpu),
            ("imported", imported), ("imported_cpu", imported_cpu),
        ):  # fmt: skip
            note(name, value)
        print(
            f"round {number}: one commit per create {alone:,.0f}/s ({alone_cpu:.0f} us CPU), "
            f"group commit {grouped:,.0f}/s ({grouped_cpu:.0f} us CPU), "
            f"batch register {imported:,.0f} identifiers/s ({imported_cpu:.2f} us CPU)",
            flush=True,
        )
    print(spread(f"single creates, {args.threads} threads, group commit", rows["grouped"], "/s"))
    print(spread("  the same, one commit per create", rows["alone"], "/s"))
    print(spread("  ratio, round by round", rows["ratio"], "x"))
    print(spread("  CPU per create, group commit", rows["grouped_cpu"], " us"))
    print(spread("  CPU per create, one commit each", rows["alone_cpu"], " us"))
    print(spread(f"batch register ({BATCH} per call), identifiers", rows["imported"], "/s"))
    print(spread("  CPU per identifier", rows["imported_cpu"], " us"))


if __name__ == "__main__":
    main()
