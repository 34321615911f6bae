"""DNS rows of the table: dnsperf against the node's DNS face and NSD serving the same zone.

(`loadtest.dns_bench` is the same comparison run alone with its own options; this
module pins the servers and returns the table's rows.)

NSD, loaded with the node's own zone by AXFR, is the reference: both run one
server process, side by side, and dnsperf queries them in turn with the same
query file. Cached answers: every identifier's name, over and over. Missing
names: a fresh file of random names under an existing prefix for every round,
so each query is an NXDOMAIN the node has not seen (its negative cache cannot
hold them).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.zone

from loadtest import machine
from loadtest import node as node_process
from loadtest.dns_bench import free_port, start_nsd, wait_for
from loadtest.grpc_load import create_enterprise, seed
from loadtest.machine import Pinning
from loadtest.report import Row, Sample, interleaved, say

PREFIX_CODE = "78"
IDENTIFIERS = 10_000
MISSING_NAMES_PER_SECOND = 60_000  # more than either server answers: no name comes twice
DNSPERF_CLIENTS = 4
DNSPERF_OUTSTANDING = 200


@dataclass(frozen=True)
class Perf:
    """One dnsperf run."""

    queries_per_second: float
    rcodes: dict[str, int]
    lost: int
    client_cpu_seconds: float


def dnsperf(host: str, port: int, queries: Path, seconds: float) -> Perf:
    command = ["dnsperf", "-s", host, "-p", str(port), "-d", str(queries), "-l", f"{seconds:g}",
               "-c", str(DNSPERF_CLIENTS), "-q", str(DNSPERF_OUTSTANDING)]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"dnsperf printed no rate:\n{done.stdout}")
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    codes = re.search(r"Response codes:\s+(.*)", done.stdout)
    rcodes = {
        name: int(count)
        for name, count in re.findall(r"([A-Z]+) (\d+) \(", codes.group(1) if codes else "")
    }
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Perf(float(found.group(1)), rcodes, int(lost.group(1)) if lost else 0, cpu)


def available() -> bool:
    return all(
        shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}") for tool in ("dnsperf", "nsd")
    )


def rows(idnode: str, rounds: int, seconds: float, pinning: Pinning) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="idnode-bench-dns-") as directory:
        root = Path(directory)
        node = node_process.start(
            idnode, str(root / "data"), pinning.server_workers(), dns=True, pinning=pinning
        )
        nsd: subprocess.Popen[bytes] | None = None
        try:
            prefix = create_enterprise(node.grpc, node.token, PREFIX_CODE)
            seed(node.grpc, node.token, f"{prefix}/d{{:07d}}", IDENTIFIERS)
            zone = str(node.ready["zone"])
            host, port = node.dns
            transfer = dns.query.xfr(host, zone, port=port, timeout=60)
            (root / "zone").write_text(dns.zone.from_xfr(transfer).to_text(relativize=False))
            nsd_port = free_port()
            nsd = start_nsd(root, zone, nsd_port, pinning.server_command)
            wait_for(nsd_port, zone)
            say(f"DNS: node on {host}:{port}, NSD on 127.0.0.1:{nsd_port}, {IDENTIFIERS} names")
            under = f"{'.'.join(reversed(prefix.split('.')))}.{zone}"
            servers = _Servers(node, nsd, host, port, nsd_port, seconds)
            return [_hits(servers, root, under, rounds), _misses(servers, root, under, rounds)]
        finally:
            if nsd is not None:
                nsd.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    nsd.wait(30)
            node.stop()


@dataclass
class _Servers:
    node: node_process.Node
    nsd: subprocess.Popen[bytes]
    host: str
    port: int
    nsd_port: int
    seconds: float

    def node_round(self, queries: Callable[[], Path], unexpected: list[str], want: str) -> Sample:
        return self._round(self.node.pids(), self.host, self.port, queries(), unexpected, want)

    def nsd_round(self, queries: Callable[[], Path], unexpected: list[str], want: str) -> Sample:
        pids = machine.family(self.nsd.pid)
        return self._round(pids, "127.0.0.1", self.nsd_port, queries(), unexpected, want)

    def _round(
        self, pids: list[int], host: str, port: int, queries: Path, unexpected: list[str], want: str
    ) -> Sample:
        before = machine.cpu_seconds(pids)
        perf = dnsperf(host, port, queries, self.seconds)
        used = machine.cpu_seconds(pids) - before
        answered = sum(perf.rcodes.values())
        others = {code: n for code, n in perf.rcodes.items() if code != want}
        if sum(others.values()) > answered / 1000 or perf.lost > answered / 1000:
            server = "node" if port == self.port else "NSD"
            unexpected.append(f"{server}: {perf.lost} lost, other rcodes {others}")
        return Sample(
            value=perf.queries_per_second,
            server_cpu_us_per_op=used / answered * 1e6 if answered else None,
            client_cpu_share=perf.client_cpu_seconds / self.seconds,
        )


def _hits(servers: _Servers, root: Path, under: str, rounds: int) -> Row:
    queries = root / "hits.txt"
    queries.write_text("".join(f"d{i:07d}.{under} TXT\n" for i in range(IDENTIFIERS)))
    dnsperf(servers.host, servers.port, queries, 1)  # every answer cached before the clock runs
    dnsperf("127.0.0.1", servers.nsd_port, queries, 1)
    unexpected: list[str] = []
    nsd, node = interleaved(
        "DNS cached answers, node vs NSD",
        rounds,
        lambda: servers.nsd_round(lambda: queries, unexpected, "NOERROR"),
        lambda: servers.node_round(lambda: queries, unexpected, "NOERROR"),
    )
    return Row(
        f"DNS cached answers (TXT of {IDENTIFIERS:,} names), queries", "/s", node, nsd,
        "NSD, same zone, same dnsperf", "≥ 0.85×", unexpected[:3],
    )  # fmt: skip


def _misses(servers: _Servers, root: Path, under: str, rounds: int) -> Row:
    count = int(MISSING_NAMES_PER_SECOND * servers.seconds)
    current: list[Path] = []

    def fresh() -> Path:
        """A new file for each pair of rounds: the node and NSD get the same names."""
        path = root / f"missing-{len(current)}.txt"
        path.write_text("".join(f"m{secrets.token_hex(6)}.{under} TXT\n" for _ in range(count)))
        current.append(path)
        return path

    unexpected: list[str] = []
    nsd, node = interleaved(
        "DNS random missing names (NXDOMAIN), node vs NSD",
        rounds,
        lambda: servers.nsd_round(fresh, unexpected, "NXDOMAIN"),
        lambda: servers.node_round(lambda: current[-1], unexpected, "NXDOMAIN"),
    )
    return Row(
        "DNS random missing names (NXDOMAIN flood, a fresh name each query), queries", "/s",
        node, nsd, "NSD, same zone, same dnsperf", "≥ 0.3×", unexpected[:3],
    )  # fmt: skip
