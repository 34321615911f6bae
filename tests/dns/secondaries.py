"""Real secondaries (Knot DNS, NSD, BIND) and Unbound on loopback, each in its own temp dir,
and idnode as their primary."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from resolver.dns import DnsOptions, DnsServer, Notifier
from tests.dns.nodes import NODE_PREFIX, ZONE, Node
from tests.ports import free_port as free_port


def tool(name: str) -> str | None:
    for directory in ("", "/usr/sbin/", "/usr/bin/"):
        found = shutil.which(name) if not directory else directory + name
        if found and os.path.exists(found):
            return found
    return None


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
    with _running(command, log):
        yield Secondary(kind, port, directory, zone_file, log)


@contextlib.contextmanager
def _running(command: list[str], log: Path) -> Iterator[None]:
    """`command` with its output in `log`, ended by SIGTERM (SIGKILL after 10 s)."""
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=log_file)
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def primary(node: Node, options: DnsOptions, port: int = 0) -> Iterator[tuple[DnsServer, int]]:
    """idnode's DNS face for `node` on 127.0.0.1:`port` (0: any), and the port it bound."""
    server = DnsServer(node.store, NODE_PREFIX, node.follower, options)
    bound = server.start([f"127.0.0.1:{port}"])[0][1]
    try:
        yield server, bound
    finally:
        server.stop()


@contextlib.contextmanager
def notifying(node: Node, options: DnsOptions) -> Iterator[Notifier]:
    """The NOTIFY sender of `options.notify`, for as long as the block runs."""
    notifier = Notifier(node.store, options)
    notifier.start()
    try:
        yield notifier
    finally:
        notifier.stop()


def ask(port: int, name: str, rdtype: str) -> dns.message.Message | None:
    """The answer of the server on 127.0.0.1:`port` over UDP; None when it does not answer."""
    try:
        return dns.query.udp(
            dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=0.5
        )
    except (dns.exception.Timeout, OSError):
        return None


def soa_serial(port: int) -> int | None:
    reply = ask(port, ZONE, "SOA")
    if reply is None or reply.rcode() != 0 or not reply.answer:
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


def wait_for_txt(
    port: int, name: str, seconds: float, log: Path | None = None
) -> list[list[bytes]]:
    """The TXT strings the server on `port` answers for `name`, once it answers NOERROR."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = ask(port, name, "TXT")
        if reply is not None and reply.rcode() == dns.rcode.NOERROR and reply.answer:
            return [list(r.strings) for r in reply.answer[0]]
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log is not None else ""
    raise AssertionError(f"{name} not answered on port {port} within {seconds} s\n{tail}")


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
    with _running([str(tool("unbound")), "-d", "-c", str(config)], directory / "log"):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and ask(port, "unbound-ready.invalid.", "A") is None:
            time.sleep(0.1)
        yield port
