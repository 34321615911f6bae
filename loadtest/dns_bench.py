"""DNS benchmark: dnsperf against `idnode serve` and against NSD serving the same zone.

The reference is measured in the same run on the same machine: NSD, loaded
with the node's own zone by AXFR, answers the same query file. The node's
queries per second are printed as a ratio to NSD's.

    python -m loadtest.dns_bench [--workers 1] [--identifiers 10000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.zone
import grpc

from loadtest import node as node_process
from loadtest.node import say
from proto import handle_pb2, registry_pb2, registry_pb2_grpc

PREFIX_CODE = "78"


def register(node: node_process.Node, identifiers: int) -> list[str]:
    """Register `identifiers` lowercase suffixes (one plain label each); returns their names."""
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
    labels = ".".join(reversed(prefix.split(".")))
    return [f"p{i:07d}.{labels}.{node.ready['zone']}" for i in range(identifiers)]


def dnsperf(host: str, port: int, queries: Path, seconds: int) -> float:
    command = ["dnsperf", "-s", host, "-p", str(port), "-d", str(queries), "-l", str(seconds)]
    command += ["-c", "4", "-q", "200"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    found = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"dnsperf printed no rate:\n{done.stdout}")
    return float(found.group(1))


def start_nsd(root: Path, zone: str, port: int) -> subprocess.Popen[bytes]:
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
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{root}/zone"
"""
    )
    nsd = shutil.which("nsd") or "/usr/sbin/nsd"
    return subprocess.Popen([nsd, "-d", "-c", str(config)])


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
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, float]:
    for tool in ("dnsperf", "nsd"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SystemExit(f"{tool} is not installed (make system-deps)")
    with tempfile.TemporaryDirectory(prefix="idnode-dns-bench-") as directory:
        root = Path(directory)
        node = node_process.start(args.idnode, str(root / "data"), args.workers, dns=True)
        ready = node.ready
        try:
            names = register(node, args.identifiers)
            host, _, port_text = ready["dns"][0].rpartition(":")
            zone = ready["zone"]
            queries = root / "queries.txt"
            queries.write_text("".join(f"{name} TXT\n" for name in names))
            xfr = dns.query.xfr(host, zone, port=int(port_text), timeout=60)
            (root / "zone").write_text(dns.zone.from_xfr(xfr).to_text(relativize=False))
            say(f"node up: {args.workers} worker(s), DNS on {ready['dns'][0]}, {len(names)} names")
            node_qps = dnsperf(host, int(port_text), queries, args.seconds)
            say(f"node: {node_qps:,.0f} queries/s")
        finally:
            node.stop()
        nsd_port = free_port()
        nsd = start_nsd(root, zone, nsd_port)
        try:
            wait_for(nsd_port, zone)
            nsd_qps = dnsperf("127.0.0.1", nsd_port, queries, args.seconds)
            say(f"NSD (1 server process): {nsd_qps:,.0f} queries/s")
        finally:
            nsd.send_signal(signal.SIGTERM)
            nsd.wait(30)
    return {"node_qps": node_qps, "nsd_qps": nsd_qps, "node_to_nsd_ratio": node_qps / nsd_qps}


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
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        print(json.dumps(results))
    else:
        print(f"node / NSD queries per second: {results['node_to_nsd_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
