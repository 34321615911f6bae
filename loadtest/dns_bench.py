"""DNS benchmark: dnsperf against `idnode serve` and against NSD serving the same zone.

The reference is measured in the same run on the same machine: NSD, loaded
with the node's own zone by AXFR, answers the same query files. Two loads:
"hit" asks TXT of every registered name (cached answers), "flood" asks TXT of
random names under the enterprise prefix, each asked once (an NXDOMAIN flood:
every query misses the cache). Rounds interleave node and NSD; each figure is
the median of the rounds with its min-max spread. Besides queries per second,
the CPU time the servers' processes used (from /proc, every process of each
server) per answered query: on a shared machine this moves far less than
throughput does.

    python -m loadtest.dns_bench [--workers 1] [--identifiers 10000] [--seconds 10] [--rounds 3]

`--variant` compares several nodes in the same interleaved rounds, each started
with its own environment or idnode command, e.g. the UDP loop batched and not:

    python -m loadtest.dns_bench --variant plain:IDNODE_DNS_UDP_BATCH=0 --variant batch
    python -m loadtest.dns_bench --variant before:idnode=../old/.venv/bin/idnode --variant after
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.zone
import grpc

from loadtest import machine
from loadtest import node as node_process
from loadtest.machine import UNPINNED, Pinning
from loadtest.node import say
from proto import handle_pb2, registry_pb2, registry_pb2_grpc

PREFIX_CODE = "78"
LOADS = ("hit", "flood")
FLOOD_QUERIES_PER_SECOND = 100_000  # flood names written per second of a run: none repeats
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """What one dnsperf run against one server gave."""

    qps: float
    completed: int
    cpu_seconds: float  # used by every process of the server during the run

    @property
    def cpu_us_per_query(self) -> float:
        return self.cpu_seconds * 1e6 / max(self.completed, 1)


@dataclass(frozen=True)
class Variant:
    """One node under test: a label, and how it differs (environment, idnode command)."""

    label: str = "node"
    env: tuple[tuple[str, str], ...] = ()
    idnode: str = ""  # empty: the --idnode command

    @classmethod
    def parse(cls, text: str) -> Variant:
        """ "LABEL" or "LABEL:KEY=VALUE,..." where KEY is an environment variable or
        `idnode` (the command to start). Raises ValueError."""
        label, _, rest = text.partition(":")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", label) or label == "nsd":
            raise ValueError(f"variant label {label[:40]!r}: lowercase letters, digits, _")
        env, idnode = [], ""
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"variant {label}: {item[:40]!r} is not KEY=VALUE")
            if key == "idnode":
                idnode = value
            else:
                env.append((key, value))
        return cls(label, tuple(env), idnode)


@dataclass
class Load:
    """The rounds of one load (hit or flood): NSD's and each variant's, by label."""

    nsd: list[Run] = field(default_factory=list)
    nodes: dict[str, list[Run]] = field(default_factory=dict)

    def ratios(self, label: str) -> list[float]:
        return [n.qps / r.qps for n, r in zip(self.nodes[label], self.nsd, strict=True)]

    def cpu_ratios(self, label: str) -> list[float]:
        """NSD's CPU per query over the node's: the throughput ratio if CPU were the only limit."""
        return [
            r.cpu_us_per_query / n.cpu_us_per_query if n.cpu_seconds else 0.0
            for n, r in zip(self.nodes[label], self.nsd, strict=True)
        ]

    def summary(self) -> dict[str, float]:
        """Medians and spreads, flat, for JSON and tables: nsd_* and LABEL_* per variant."""
        figures = {
            "nsd_qps": [run.qps for run in self.nsd],
            "nsd_cpu_us_per_query": [run.cpu_us_per_query for run in self.nsd],
        }
        for label, runs in self.nodes.items():
            figures[label + "_qps"] = [run.qps for run in runs]
            figures[label + "_to_nsd_ratio"] = self.ratios(label)
            figures[label + "_cpu_us_per_query"] = [run.cpu_us_per_query for run in runs]
            figures[label + "_cpu_ratio"] = self.cpu_ratios(label)
        out: dict[str, float] = {}
        for name, values in figures.items():
            out[name] = statistics.median(values)
            out[name + "_min"] = min(values)
            out[name + "_max"] = max(values)
        return out


def register(node: node_process.Node, identifiers: int) -> tuple[list[str], str]:
    """Register `identifiers` lowercase suffixes (one plain label each).

    Returns their names and the enterprise prefix's name, under which the flood asks.
    """
    auth = node.auth
    with grpc.insecure_channel(node.grpc) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        prefix = registry.CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code=PREFIX_CODE), metadata=auth
        ).prefix
        for start in range(0, identifiers, 1000):
            records = [
                handle_pb2.Record(
                    identifier=f"{prefix}/p{i:07d}",
                    values=node_process.product_values(i),
                )
                for i in range(start, min(start + 1000, identifiers))
            ]
            registry.BatchRegister(
                registry_pb2.BatchRegisterRequest(records=records), metadata=auth
            )
    parent = ".".join(reversed(prefix.split("."))) + "." + node.ready["zone"]
    return [f"p{i:07d}.{parent}" for i in range(identifiers)], parent


def write_flood(path: Path, parent: str, count: int, seed: int) -> None:
    """`count` random names under `parent` that no identifier has (registered suffixes start
    with "p" and a digit; these with "x")."""
    pick = random.Random(seed)
    with path.open("w") as out:
        for _ in range(count):
            out.write(f"x{pick.getrandbits(64):016x}.{parent} TXT\n")


def dnsperf(host: str, port: int, queries: Path, seconds: int) -> tuple[float, int]:
    """Queries per second and queries completed of one dnsperf run."""
    command = ["dnsperf", "-s", host, "-p", str(port), "-d", str(queries), "-l", str(seconds)]
    command += ["-c", "4", "-q", "200"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    rate = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    completed = re.search(r"Queries completed:\s+(\d+)", done.stdout)
    if rate is None or completed is None:
        raise SystemExit(f"dnsperf printed no rate:\n{done.stdout}")
    return float(rate.group(1)), int(completed.group(1))


def process_tree(root: int) -> list[int]:
    """`root` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            parents.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time used so far by `pids`."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def measured(pid: int, host: str, port: int, queries: Path, seconds: int) -> Run:
    pids = process_tree(pid)
    before = cpu_seconds(pids)
    qps, completed = dnsperf(host, port, queries, seconds)
    return Run(qps, completed, cpu_seconds(pids) - before)


def start_nsd(
    root: Path, zone: str, port: int, wrap: Callable[[list[str]], list[str]] = list
) -> subprocess.Popen[bytes]:
    """NSD serving `root`/zone on 127.0.0.1:`port`, one server process (its command line
    passed through `wrap`, e.g. to pin it to a CPU)."""
    config = root / "nsd.conf"
    config.write_text(
        f"""server:
    ip-address: 127.0.0.1@{port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{root}"
    pidfile: "{root}/nsd.pid"
    database: ""
    xfrdfile: "{root}/xfrd.state"
    zonelistfile: "{root}/zone.list"
    logfile: "{root}/nsd.log"
    # NSD's own rate limiting (on in Debian's build) would cap the flood at 200/s;
    # idnode exempts loopback the same way.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{root}/zone"
"""
    )
    nsd = shutil.which("nsd") or "/usr/sbin/nsd"
    return subprocess.Popen(wrap([nsd, "-d", "-c", str(config)]))


def wait_for(port: int, zone: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            dns.query.udp(dns.message.make_query(zone, "SOA"), "127.0.0.1", port=port, timeout=0.5)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.2)
    raise SystemExit(f"nothing answers DNS on port {port}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(
    idnode: str = node_process.default_idnode(),
    workers: int = 1,
    identifiers: int = 10_000,
    seconds: int = 10,
    rounds: int = 3,
    variants: Sequence[Variant] = (Variant(),),
    pinning: Pinning = UNPINNED,
) -> dict[str, Load]:
    """Run every load `rounds` times against each variant's node and NSD, interleaved (the
    order rotates each round); the runs by load.

    Raises SystemExit when dnsperf or NSD is missing or a server does not answer.
    """
    for tool in ("dnsperf", "nsd"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SystemExit(f"{tool} is not installed (make system-deps)")
    loads = {name: Load() for name in LOADS}
    nodes: dict[str, node_process.Node] = {}
    nsd: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="idnode-dns-bench-") as directory:
        root = Path(directory)
        try:
            parents = set()
            for variant in variants:
                nodes[variant.label] = node = node_process.start(
                    variant.idnode or idnode, str(root / variant.label), workers, dns=True,
                    pinning=pinning, env=dict(variant.env),
                )  # fmt: skip
                names, parent = register(node, identifiers)
                parents.add(parent)
            if len(parents) != 1:
                raise SystemExit(f"the variants' nodes host different prefixes: {parents}")
            host, port = node.dns
            zone = node.ready["zone"]
            files = {"hit": root / "hit.txt", "flood": root / "flood.txt"}
            files["hit"].write_text("".join(f"{name} TXT\n" for name in names))
            xfr = dns.query.xfr(host, zone, port=port, timeout=60)
            (root / "zone").write_text(dns.zone.from_xfr(xfr).to_text(relativize=False))
            nsd_port = free_port()
            nsd = start_nsd(root, zone, nsd_port, pinning.server_command)
            wait_for(nsd_port, zone)
            say(f"{len(nodes)} node(s) of {workers} worker(s), {len(names)} names; "
                f"{pinning.describe()}")  # fmt: skip
            servers = {label: (n.process.pid, *n.dns) for label, n in nodes.items()}
            servers["nsd"] = (nsd.pid, "127.0.0.1", nsd_port)
            labels = list(servers)
            for number in range(rounds):
                write_flood(files["flood"], parent, seconds * FLOOD_QUERIES_PER_SECOND, number)
                shift = number % len(labels)
                order = labels[shift:] + labels[:shift]
                for load in LOADS:
                    for server in order:
                        pid, address, port = servers[server]
                        run = measured(pid, address, port, files[load], seconds)
                        if server == "nsd":
                            loads[load].nsd.append(run)
                        else:
                            loads[load].nodes.setdefault(server, []).append(run)
                        say(f"round {number + 1} {load:5} {server:6}: {run.qps:9,.0f} q/s, "
                            f"{run.cpu_us_per_query:5.1f} us CPU/query")  # fmt: skip
        finally:
            for node in nodes.values():
                node.stop()
            if nsd is not None:
                nsd.send_signal(signal.SIGTERM)
                nsd.wait(30)
    return loads


def table(loads: dict[str, Load]) -> str:
    """The results as lines of text: medians with (min-max) across rounds."""

    def cell(summary: dict[str, float], name: str, form: str) -> str:
        low, high = summary[name + "_min"], summary[name + "_max"]
        return f"{summary[name]:{form}} ({low:{form}}-{high:{form}})"

    lines = ["load   server  q/s                      /NSD              "
             "CPU us/query      NSD/node CPU"]  # fmt: skip
    for name, load in loads.items():
        s = load.summary()
        lines.append(
            f"{name:6} {'nsd':7} {cell(s, 'nsd_qps', ',.0f'):24} {'':17} "
            f"{cell(s, 'nsd_cpu_us_per_query', '.1f'):17}"
        )
        for label in load.nodes:
            lines.append(
                f"{'':6} {label:7} {cell(s, label + '_qps', ',.0f'):24} "
                f"{cell(s, label + '_to_nsd_ratio', '.2f'):17} "
                f"{cell(s, label + '_cpu_us_per_query', '.1f'):17} "
                f"{cell(s, label + '_cpu_ratio', '.2f')}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.dns_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--idnode", default=node_process.default_idnode(), help="the idnode command to benchmark"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--identifiers", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10, help="per dnsperf run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved, nodes and NSD")
    parser.add_argument(
        "--variant",
        action="append",
        metavar="LABEL[:KEY=VALUE,...]",
        help="a node to measure (repeatable): KEY is an environment variable such as "
        "IDNODE_DNS_UDP_BATCH, or idnode (the command); default: one node labelled node",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="servers on the first half of the CPUs, dnsperf on the rest",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    try:
        variants = [Variant.parse(text) for text in args.variant or ["node"]]
    except ValueError as error:
        parser.error(str(error))
    if len({variant.label for variant in variants}) != len(variants):
        parser.error("--variant: every label must differ")
    pinning = machine.plan() if args.pin else UNPINNED
    pinning.pin_clients()
    loads = measure(
        args.idnode, args.workers, args.identifiers, args.seconds, args.rounds, variants, pinning
    )
    if args.json:
        print(json.dumps({name: load.summary() for name, load in loads.items()}))
    else:
        print(table(loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
