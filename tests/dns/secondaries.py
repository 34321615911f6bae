"""Real secondaries (Knot DNS, NSD, BIND) and Unbound on loopback, each in its own temp dir."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from tests.dns.nodes import ZONE


def tool(name: str) -> str | None:
    for directory in ("", "/usr/sbin/", "/usr/bin/"):
        found = shutil.which(name) if not directory else directory + name
        if found and os.path.exists(found):
            return found
    return None


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1 (tried, then released)."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


@dataclass
class Secondary:
    kind: str
    port: int
    directory: Path
    zone_file: Path | None  # the transferred zone as the server wrote it, if it writes one
    log: Path


def _knot(directory: Path, port: int, primary: int) -> tuple[list[str], Path]:
    config = directory / "knot.conf"
    config.write_text(
        f"""server:
    rundir: "{directory}"
    listen: 127.0.0.1@{port}
log:
  - target: stderr
    any: info
database:
    storage: "{directory}/db"
control:
    listen: "{directory}/knot.sock"
remote:
  - id: primary
    address: 127.0.0.1@{primary}
acl:
  - id: notify_from_primary
    address: 127.0.0.1
    action: notify
zone:
  - domain: {ZONE}
    master: primary
    acl: notify_from_primary
    storage: "{directory}/zones"
    file: "{directory}/zones/zone"
    zonefile-sync: 0
    zonefile-load: none
    journal-content: changes
"""
    )
    for sub in ("db", "zones"):
        (directory / sub).mkdir()
    return [str(tool("knotd")), "-c", str(config)], directory / "zones" / "zone"


def _nsd(directory: Path, port: int, primary: int) -> tuple[list[str], Path | None]:
    config = directory / "nsd.conf"
    config.write_text(
        f"""server:
    ip-address: 127.0.0.1@{port}
    server-count: 1
    username: ""
    chroot: ""
    verbosity: 2
    zonesdir: "{directory}"
    pidfile: "{directory}/nsd.pid"
    database: ""
    xfrdfile: "{directory}/xfrd.state"
    zonelistfile: "{directory}/zone.list"
    xfrdir: "{directory}"
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: "{directory}/zone"
    allow-notify: 127.0.0.1 NOKEY
    request-xfr: 127.0.0.1@{primary} NOKEY
    provide-xfr: 127.0.0.1 NOKEY
"""
    )
    return [str(tool("nsd")), "-d", "-c", str(config)], None


def _bind(directory: Path, port: int, primary: int) -> tuple[list[str], Path]:
    config = directory / "named.conf"
    config.write_text(
        f"""options {{
  directory "{directory}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  pid-file "{directory}/named.pid";
  session-keyfile "{directory}/session.key";
  recursion no;
  dnssec-validation no;
  notify no;
  minimal-responses yes;
}};
controls {{ }};
zone "{ZONE}" {{
  type secondary;
  primaries {{ 127.0.0.1 port {primary}; }};
  file "{directory}/zone";
  masterfile-format text;
  allow-notify {{ 127.0.0.1; }};
  allow-transfer {{ 127.0.0.1; }};
}};
"""
    )
    return [str(tool("named")), "-g", "-u", "root", "-c", str(config)], directory / "zone"


_STARTERS = {"knot": ("knotd", _knot), "nsd": ("nsd", _nsd), "bind": ("named", _bind)}


def available(kind: str) -> bool:
    return tool(_STARTERS[kind][0]) is not None


@contextlib.contextmanager
def secondary(kind: str, tmp: Path, primary_port: int, port: int = 0) -> Iterator[Secondary]:
    """Run `kind` as a secondary of the primary on 127.0.0.1:`primary_port`."""
    directory = tmp / kind
    directory.mkdir()
    port = port or free_port()
    command, zone_file = _STARTERS[kind][1](directory, port, primary_port)
    log = directory / "log"
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=log_file)
    try:
        yield Secondary(kind, port, directory, zone_file, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def soa_serial(port: int) -> int | None:
    try:
        reply = dns.query.udp(
            dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=0.5
        )
    except (dns.exception.Timeout, OSError):
        return None
    if reply.rcode() != 0 or not reply.answer:
        return None
    return int(reply.answer[0][0].serial)


def wait_for_serial(port: int, serial: int, seconds: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if soa_serial(port) == serial:
            return
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log is not None else ""
    raise AssertionError(f"serial {serial} not served on port {port} within {seconds} s\n{tail}")


@contextlib.contextmanager
def unbound(tmp: Path, stub_port: int, strict: bool = True) -> Iterator[int]:
    """Unbound as a resolver with QNAME minimisation, the zone as a stub on loopback."""
    directory = tmp / "unbound"
    directory.mkdir()
    port = free_port()
    config = directory / "unbound.conf"
    config.write_text(
        f"""server:
    interface: 127.0.0.1@{port}
    port: {port}
    access-control: 127.0.0.0/8 allow
    do-ip6: no
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: "{directory}"
    pidfile: "{directory}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    module-config: "iterator"
    qname-minimisation: yes
    qname-minimisation-strict: {"yes" if strict else "no"}
    harden-below-nxdomain: yes
stub-zone:
    name: "{ZONE}"
    stub-addr: 127.0.0.1@{stub_port}
remote-control:
    control-enable: no
"""
    )
    log = directory / "log"
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [str(tool("unbound")), "-d", "-c", str(config)], stdout=log_file, stderr=log_file
        )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                dns.query.udp(dns.message.make_query("unbound-ready.invalid.", "A"), "127.0.0.1",
                              port=port, timeout=0.3)  # fmt: skip
                break
            except (dns.exception.Timeout, OSError):
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
