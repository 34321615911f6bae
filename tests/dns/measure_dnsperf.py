"""dnsperf against the node's DNS face and NSD serving the same zone: `python -m tests.dns.measure_dnsperf`.

Both servers run one process on loopback; the ratio of their queries per second
is what to compare across machines.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import dns.message
import dns.query
import dns.zone

from loadtest.dns_bench import start_nsd, wait_for
from proto import handle_pb2
from registry.store import Store
from resolver.dns import DnsServer, dns_name
from resolver.follow import ChangeFollower
from tests.dns.nodes import NODE_PREFIX, ZONE, make_node, make_options, value

IDENTIFIERS = 10_000
SECONDS = 10


def serve(data_dir: str, port: int) -> None:
    """Serve the store at `data_dir` on 127.0.0.1:`port` until SIGTERM."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # delivered to sigwait below
    store = Store(data_dir)
    server = DnsServer(store, NODE_PREFIX, ChangeFollower(store), make_options())
    server.start([f"127.0.0.1:{port}"])
    signal.sigwait({signal.SIGTERM})
    server.stop()


def main() -> None:
    for tool in ("dnsperf", "nsd"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} is not installed")
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        node = make_node(root)
        names = []
        for start in range(0, IDENTIFIERS, 5000):
            records = []
            for i in range(start, start + 5000):
                identifier = f"88.118.8/P{i:08d}"
                names.append(dns_name(identifier, ZONE))
                values = [value(1, "URL", f"https://example.com/{i}"), value(2, "batch", "B1")]
                records.append(handle_pb2.Record(identifier=identifier, values=values))
            node.registry.batch_register(node.admin, records)
        data_dir = node.store.path
        node.store.close()
        queries = root / "queries.txt"
        queries.write_text("".join(f"{name} TXT\n" for name in names))
        node_port, nsd_port = 15353, 15354
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.dns.measure_dnsperf", "serve", data_dir, str(node_port)]
        )
        try:
            wait_for(node_port, ZONE)
            zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=node_port, timeout=30))
            (root / "zone").write_text(zone.to_text(relativize=False))
            node_qps = _dnsperf(node_port, queries)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
        nsd = start_nsd(root, ZONE, nsd_port)
        try:
            wait_for(nsd_port, ZONE)
            nsd_qps = _dnsperf(nsd_port, queries)
        finally:
            nsd.send_signal(signal.SIGTERM)
            nsd.wait(timeout=10)
    print(f"node (1 process): {node_qps:,.0f} queries/s")
    print(f"NSD  (1 process): {nsd_qps:,.0f} queries/s")
    print(f"node / NSD: {node_qps / nsd_qps:.2f}")


def _dnsperf(port: int, queries: Path) -> float:
    command = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries)]
    command += ["-l", str(SECONDS), "-c", "4", "-q", "200"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 30, check=True)
    lost = re.search(r"Queries lost:\s+(\d+)", done.stdout)
    found = re.search(r"Queries per second:\s+([\d.]+)", done.stdout)
    assert found and lost, done.stdout
    print(f"port {port}: {found.group(1)} q/s, {lost.group(1)} lost", file=sys.stderr)
    return float(found.group(1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
