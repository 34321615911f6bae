"""Scale rows: resolve at 10^4 identifiers (the reference) against SCALE identifiers.

Both data dirs are written by `idnode populate`; both nodes run side by side
with answer caches of CACHE_ENTRIES, and clients ask for random identifiers,
so nearly every call reads the store. Each round measures both nodes' peak
rate (closed loop), then offers each the same paced load, 80 % of the
reference's peak in that round, and takes p99 of the latencies. Afterwards:
resident memory per process by kind, and LMDB bytes per identifier.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest import machine
from loadtest import node as node_process
from loadtest.grpc_load import Call, Clients, Outcome
from loadtest.machine import Pinning
from loadtest.report import Row, Sample, number_text, say

REFERENCE_IDENTIFIERS = 10_000
CACHE_ENTRIES = 100
CONCURRENCY = 16
LOAD_SHARE = 0.8
POPULATE_PREFIX = "88.118.99"
PATTERN = POPULATE_PREFIX + "/p{:010d}"  # what `idnode populate` writes


@dataclass
class _Side:
    """One node with its data and its clients."""

    identifiers: int
    node: node_process.Node
    clients: Clients
    populated: dict[str, Any]
    client_cpus: int
    sent: int = 0  # paced calls, over all rounds
    late: int = 0  # of them, sent over 1 ms after they were due
    errors: int = 0
    first_error: str = ""

    def problems(self) -> list[str]:
        found = []
        if self.errors:
            found.append(f"{self.identifiers:,}: {self.errors} errors ({self.first_error})")
        if self.late > self.sent / 100:
            found.append(
                f"{self.identifiers:,}: the load generator sent {self.late:,} of {self.sent:,} "
                "paced calls over 1 ms late (their latencies count from when they were due)"
            )
        return found

    def call(self) -> Call:
        return Call("resolve", PATTERN, count=self.identifiers)

    def peak(self, seconds: float) -> Sample:
        before = self.node.cpu_seconds()
        outcome = self.clients.closed(self.call(), seconds, CONCURRENCY)
        return self._sample(outcome, outcome.rate, self.node.cpu_seconds() - before)

    def paced(self, rate: float, seconds: float) -> tuple[Sample, float]:
        """p99 latency in ms under `rate` calls/s, and p50."""
        before = self.node.cpu_seconds()
        outcome = self.clients.paced(self.call(), rate, seconds)
        used = self.node.cpu_seconds() - before
        self.sent += outcome.operations
        self.late += outcome.late_sends
        self.errors += outcome.errors
        self.first_error = self.first_error or outcome.first_error
        cuts = statistics.quantiles(outcome.latencies, n=100) if len(outcome.latencies) > 1 else []
        p99 = cuts[98] * 1000 if cuts else 0.0
        p50 = cuts[49] * 1000 if cuts else 0.0
        return self._sample(outcome, p99, used), p50

    def _sample(self, outcome: Outcome, value: float, used: float) -> Sample:
        return Sample(
            value=value,
            server_cpu_us_per_op=used / outcome.operations * 1e6 if outcome.operations else None,
            client_cpu_share=outcome.cpu_seconds / (outcome.seconds * self.client_cpus)
            if outcome.seconds
            else None,
        )

    def memory(self) -> dict[str, dict[str, int]]:
        """Resident KiB by kind for the master and each worker."""
        found: dict[str, dict[str, int]] = {}
        workers = 0
        for pid in self.node.pids():
            role = machine.role(pid)
            if role == "worker":
                workers += 1
                role = f"worker {workers}"
            if role != "helper":
                found[role] = machine.memory_kib(pid)
        return found


def populate(
    idnode: str, data_dir: str, count: int, token: str, pinning: Pinning
) -> dict[str, Any]:
    """`idnode populate` into `data_dir`; its JSON report (its progress goes to our stderr)."""
    command = [idnode, "populate", "--data-dir", data_dir, "--count", str(count),
               "--prefix", POPULATE_PREFIX, "--json"]  # fmt: skip
    done = subprocess.run(
        pinning.server_command(command), stdout=subprocess.PIPE, text=True, check=True,
        env={**os.environ, "IDNODE_ADMIN_TOKEN": token},
    )  # fmt: skip
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def rows(idnode: str, rounds: int, seconds: float, pinning: Pinning, scale: int) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="idnode-bench-scale-"))
    sides: list[_Side] = []
    try:
        token = "bench-scale-" + secrets.token_hex(8)
        for count in (REFERENCE_IDENTIFIERS, scale):
            say(f"scale: idnode populate --count {count:,}")
            data_dir = str(root / f"data-{count}")
            populated = populate(idnode, data_dir, count, token, pinning)
            say(f"scale: populated {count:,} at {populated['identifiers_per_second']:,.0f}/s")
            node = node_process.start(
                idnode, data_dir, pinning.server_workers(), dns=False, pinning=pinning,
                env={"IDNODE_CACHE_ENTRIES": str(CACHE_ENTRIES),
                     "IDNODE_NEGATIVE_CACHE_ENTRIES": str(CACHE_ENTRIES)},
                token=token,
            )  # fmt: skip
            client_cpus = len(pinning.client) or 1
            clients = Clients(node.grpc, token, client_cpus)
            sides.append(_Side(count, node, clients, populated, client_cpus))
        return _measure(sides[0], sides[1], rounds, seconds)
    finally:
        for side in sides:
            side.clients.close()
            side.node.stop()
        shutil.rmtree(root, ignore_errors=True)


def _measure(small: _Side, large: _Side, rounds: int, seconds: float) -> list[Row]:
    for side in (small, large):
        side.peak(1.0)  # connections, imports and the first pages before the clock runs
    peaks: tuple[list[Sample], list[Sample]] = ([], [])
    p99s: tuple[list[Sample], list[Sample]] = ([], [])
    p50s: tuple[list[float], list[float]] = ([], [])
    offered: list[float] = []
    for number in range(1, rounds + 1):
        for index, side in enumerate((small, large)):
            peaks[index].append(side.peak(seconds))
        offered.append(LOAD_SHARE * peaks[0][-1].value)
        for index, side in enumerate((small, large)):
            sample, p50 = side.paced(offered[-1], seconds)
            p99s[index].append(sample)
            p50s[index].append(p50)
        say(
            f"scale: round {number}/{rounds}: peak {number_text(peaks[0][-1].value)} vs "
            f"{number_text(peaks[1][-1].value)}/s; at {number_text(offered[-1])}/s p99 "
            f"{p99s[0][-1].value:.2f} vs {p99s[1][-1].value:.2f} ms"
        )
    small_name, large_name = f"{small.identifiers:,}", f"{large.identifiers:,}"
    load_note = (
        f"random identifiers, answer caches of {CACHE_ENTRIES} entries (nearly every call reads "
        f"the store); paced at {LOAD_SHARE:.0%} of the reference's peak in each round "
        f"(median {number_text(statistics.median(offered))}/s), latency counted from when each "
        f"call was due; p50 {statistics.median(p50s[0]):.2f} ms at {small_name}, "
        f"{statistics.median(p50s[1]):.2f} ms at {large_name}"
    )
    return [
        Row(
            f"gRPC Resolve peak at {large_name} identifiers (random, store reads)", "/s",
            peaks[1], peaks[0], f"{small_name} identifiers",
        ),
        Row(
            f"resolve p99 at {large_name} identifiers under {LOAD_SHARE:.0%} of peak", " ms",
            p99s[1], p99s[0], f"{small_name} identifiers", "≤ 1.5×",
            [load_note, *small.problems(), *large.problems()],
        ),
        *_memory_rows(small, large),
    ]  # fmt: skip


def _memory_rows(small: _Side, large: _Side) -> list[Row]:
    before, after = small.memory(), large.memory()
    reference = f"{small.identifiers:,} identifiers"
    rows = []
    for process in after:
        if process not in before:
            continue
        for kind, label in (("RssAnon", "anonymous"), ("RssFile", "file-backed (LMDB map)")):
            rows.append(
                Row(
                    f"{process}: resident {label} memory at {large.identifiers:,}", " MiB",
                    [Sample(after[process].get(kind, 0) / 1024)],
                    [Sample(before[process].get(kind, 0) / 1024)], reference,
                    "bounded by the caches" if kind == "RssAnon" else "",
                )
            )  # fmt: skip
    for key, label in (
        ("record_bytes_per_identifier", "records B-tree"),
        ("store_bytes_per_identifier", "whole map in use, change log included"),
    ):
        rows.append(
            Row(
                f"LMDB bytes per identifier at {large.identifiers:,} ({label})", " B",
                [Sample(float(large.populated[key]))], [Sample(float(small.populated[key]))],
                reference,
            )
        )  # fmt: skip
    return rows
