"""Measure the upward sync lag while registering at a steady rate (not a test; see docs/hierarchy.md).

    .venv/bin/python -m tests.sync.measure_lag --rate 200 --seconds 20

Starts a top-level node and a secondary node as real processes on loopback,
registers `rate` identifiers a second (paced BatchRegister calls of `--batch`), takes the
lag of each registration as: when the top-level node's acknowledged sequence first
covers it (read from its LMDB every few milliseconds) minus when its call returned.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tests.sync import nodes
from tests.sync.nodes import ADMIN

POLL_SECONDS = 0.002


def measure(rate: float, seconds: float, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        toplevel = nodes.start_toplevel(root / "toplevel")
        node = None
        try:
            token = nodes.add_node(toplevel, "88.118")
            node = nodes.start_node(root / "node", "88.118", toplevel.address, token)
            return _run(toplevel, node, root, rate, seconds, batch)
        finally:
            if node is not None:
                node.stop()
            toplevel.stop()


def _run(
    toplevel: nodes.Proc, node: nodes.Proc, root: Path, rate: float, seconds: float, batch: int
) -> dict[str, float]:
    from proto import registry_pb2
    from sync.toplevel.mirror import Mirror

    acked: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        with nodes.reading(root / "toplevel") as store:
            mirror = Mirror(store)
            while not stop.is_set():
                acked.append((time.monotonic(), mirror.node("88.118").acked_sequence))
                time.sleep(POLL_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stub = nodes.registry(node)
    committed: list[tuple[float, int]] = []
    interval = batch / rate
    start = time.monotonic()
    calls = int(seconds * rate / batch)
    for n in range(calls):
        time.sleep(max(0.0, start + n * interval - time.monotonic()))
        records = [
            nodes.record(f"88.118/m-{n}-{i}", ("URL", f"https://example.com/{n}/{i}"))
            for i in range(batch)
        ]
        reply = stub.BatchRegister(
            registry_pb2.BatchRegisterRequest(records=records), metadata=ADMIN, timeout=30
        )
        committed.append((time.monotonic(), reply.sequence))
    achieved = calls * batch / (time.monotonic() - start)
    last = committed[-1][1]
    nodes.wait_until("the last registration acknowledged", lambda: acked[-1][1] >= last, 60)
    stop.set()
    sampler.join(5)
    lags = []
    position = 0
    for when, sequence in committed:
        while acked[position][1] < sequence:
            position += 1
        lags.append(max(0.0, acked[position][0] - when))
    quantiles = statistics.quantiles(lags, n=100)
    return {
        "rate_per_second": round(achieved, 1),
        "registrations": calls * batch,
        "lag_p50_ms": round(quantiles[49] * 1000, 1),
        "lag_p95_ms": round(quantiles[94] * 1000, 1),
        "lag_p99_ms": round(quantiles[98] * 1000, 1),
        "lag_max_ms": round(max(lags) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="registrations a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=1, help="records per BatchRegister call")
    args = parser.parse_args()
    print(measure(args.rate, args.seconds, args.batch))


if __name__ == "__main__":
    main()
