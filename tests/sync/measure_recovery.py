"""Measure how soon registrations made during an upstream outage reach it once it is back.

    .venv/bin/python -m tests.sync.measure_recovery --outage 20 --runs 3

Starts a top-level node and a secondary node as real processes on loopback, stops the
top-level node, registers `--registrations` identifiers one call each, keeps the
top-level node away for `--outage` seconds in all, starts it again on the same port and
data dir, and takes the time from its ready line until it has acknowledged every
registration (asked every 20 ms). Not a test; see docs/hierarchy.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tests.sync import nodes

PREFIX = "88.118"
POLL_SECONDS = 0.02


def measure_once(outage_seconds: float, registrations: int) -> float:
    """Seconds from the top-level node's return until it holds every registration."""
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        port = nodes.free_port()
        toplevel = nodes.start_toplevel(root / "toplevel", port)
        node = None
        try:
            token = nodes.add_node(toplevel, PREFIX)
            node = nodes.start_node(root / "node", PREFIX, toplevel.address, token)
            nodes.register_many(node, PREFIX, 1, "before")
            nodes.wait_until(
                "the first sync", lambda: nodes.converged(toplevel, root / "node", PREFIX)
            )
            toplevel.stop()
            away = time.monotonic()
            nodes.register_many(node, PREFIX, registrations, "outage", batch=1)
            time.sleep(max(0.0, away + outage_seconds - time.monotonic()))
            toplevel = nodes.start_toplevel(root / "toplevel", port)
            back = time.monotonic()
            last = nodes.node_last_sequence(root / "node")
            while nodes.node_status(toplevel, PREFIX).acked_sequence < last:
                if time.monotonic() - back > 120:
                    raise AssertionError("the registrations never reached the top-level node")
                time.sleep(POLL_SECONDS)
            return time.monotonic() - back
        finally:
            if node is not None:
                node.stop()
            toplevel.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the upstream is away")
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    seconds = [measure_once(args.outage, args.registrations) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "outage_seconds": args.outage,
                "registrations": args.registrations,
                "catch_up_seconds": [round(s, 2) for s in seconds],
                "median_seconds": round(statistics.median(seconds), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
