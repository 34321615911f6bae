"""HTTP rows of the table: `loadtest.http_bench`'s wrk rounds, pinned, as rows with a reference.

The reference is the same server's floor (GET /healthz: routing and the server,
nothing else); the subjects are cached hits: the 302 of GET /{identifier} and the
Handle JSON of GET /api/handles/{identifier}. Rounds alternate as http_bench runs
them, and each ratio pairs a subject's round with the floor's of the same round.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

from loadtest import http_bench
from loadtest import node as node_process
from loadtest.machine import Pinning
from loadtest.report import Row, Sample, say

IDENTIFIERS = 1000
CONNECTIONS = 32


def available() -> bool:
    return shutil.which("wrk") is not None


def rows(idnode: str, rounds: int, seconds: float, pinning: Pinning) -> list[Row]:
    data_dir = tempfile.mkdtemp(prefix="idnode-bench-http-")
    node = node_process.start(
        idnode, data_dir, pinning.server_workers(), dns=False, http=True, pinning=pinning
    )
    try:
        names = http_bench.register(node.ready["http"][0], node.token, IDENTIFIERS)
        say(f"HTTP: node up on {node.ready['http'][0]}, {len(names)} identifiers")
        scripts = {
            "floor": http_bench.script(data_dir, ["/healthz"]),
            "redirect": http_bench.script(data_dir, [f"/{n}" for n in names]),
            "rest": http_bench.script(data_dir, [f"/api/handles/{n}" for n in names]),
        }
        settings = argparse.Namespace(rounds=rounds, seconds=seconds, connections=CONNECTIONS)
        samples = http_bench.measure(node, scripts, settings)
    finally:
        node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    floor = [Sample(rate, cpu) for rate, cpu in samples["floor"]]
    floor_name = "floor (GET /healthz)"
    return [
        Row(
            f"HTTP cached redirect (GET /ID, wrk {CONNECTIONS} connections), requests", "/s",
            [Sample(rate, cpu) for rate, cpu in samples["redirect"]], floor, floor_name,
            "≥ 0.9×, < 60 µs CPU",
        ),
        Row(
            "HTTP cached Handle JSON (GET /api/handles/ID), requests", "/s",
            [Sample(rate, cpu) for rate, cpu in samples["rest"]], floor, floor_name,
            "≥ 0.9×, < 60 µs CPU",
        ),
    ]  # fmt: skip
