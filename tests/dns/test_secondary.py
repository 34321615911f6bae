"""Real secondaries (Knot DNS, NSD): AXFR on start, then NOTIFY + IXFR after registrations."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.dns import DnsServer, Notifier
from tests.dns import secondaries
from tests.dns.nodes import NODE_PREFIX, ZONE, Node, make_options, value

KNOTD = shutil.which("knotd") or (os.path.exists("/usr/sbin/knotd") and "/usr/sbin/knotd")
NSD = shutil.which("nsd") or (os.path.exists("/usr/sbin/nsd") and "/usr/sbin/nsd")


def _free_port() -> int:
    return secondaries.free_port()  # free for UDP and TCP both


def _knot_config(directory: Path, port: int, primary_port: int) -> Path:
    config = directory / "knot.conf"
    config.write_text(
        f"""
server:
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
    address: 127.0.0.1@{primary_port}
acl:
  - id: notify_from_primary
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "{directory}/zones"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
zone:
  - domain: {ZONE}
    master: primary
    acl: notify_from_primary
"""
    )
    return config


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if not KNOTD:
        pytest.skip("knotd is not installed (Debian package: knot)")
    directory = tmp_path / "knot"
    for sub in ("db", "zones"):
        (directory / sub).mkdir(parents=True)
    yield _free_port(), directory


def _answer(port: int, name: str) -> dns.message.Message | None:
    try:
        return dns.query.udp(
            dns.message.make_query(name, "TXT"), "127.0.0.1", port=port, timeout=0.5
        )
    except (dns.exception.Timeout, OSError):
        return None


def _wait_for(port: int, name: str, seconds: float, log: Path | None = None) -> dns.message.Message:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = _answer(port, name)
        if reply is not None and reply.rcode() == dns.rcode.NOERROR and reply.answer:
            return reply
        time.sleep(0.1)
    tail = log.read_text()[-2000:] if log is not None else ""
    raise AssertionError(f"the secondary did not answer {name} within {seconds} s\n{tail}")


def test_knot_secondary_follows_by_axfr_then_notify_and_ixfr(
    node: Node, knot: tuple[int, Path]
) -> None:
    knot_port, directory = knot
    options = make_options(notify=(f"127.0.0.1:{knot_port}",))
    primary = DnsServer(node.store, NODE_PREFIX, node.follower, options)
    primary_port = primary.start(["127.0.0.1:0"])[0][1]
    notifier = Notifier(node.store, options)
    notifier.start()
    log = directory / "knotd.log"
    config = _knot_config(directory, knot_port, primary_port)
    with open(log, "w") as log_file:
        knotd = subprocess.Popen([str(KNOTD), "-c", str(config)], stdout=log_file, stderr=log_file)
    try:
        first = _wait_for(knot_port, "abc-1.8.118.88.id.example.", 10, log)
        assert [list(r.strings) for r in first.answer[0]] == [[b"1", b"batch", b"B-42"]]
        node.registry.create(node.admin, "88.118.8/after-notify", [value(1, "batch", "fresh")])
        started = time.monotonic()
        second = _wait_for(knot_port, "after-notify.8.118.88.id.example.", 5)
        assert [list(r.strings) for r in second.answer[0]] == [[b"1", b"batch", b"fresh"]]
        assert time.monotonic() - started < 5
        node.registry.modify_values(node.admin, "88.118.8/abc-1", [value(1, "batch", "B-43")])
        node.registry.delete(node.admin, "88.118.8/JXDY2106023")
        deadline = time.monotonic() + 5
        while True:  # a change and a delete travel as one IXFR with removals
            reply = _answer(knot_port, "abc-1.8.118.88.id.example.")
            if reply is not None and reply.answer and b"B-43" in reply.answer[0][0].strings:
                break
            assert time.monotonic() < deadline, "the secondary missed the change"
            time.sleep(0.1)
        while True:
            gone = _answer(knot_port, "b32-99c48m9i64o3cc1i6c.8.118.88.id.example.")
            if gone is not None and gone.rcode() == dns.rcode.NXDOMAIN:
                break
            assert time.monotonic() < deadline, "the secondary missed the delete"
            time.sleep(0.1)
        text = log.read_text()
        assert "notify, incoming" in text
        assert "IXFR, incoming" in text and "finished" in text.split("IXFR, incoming")[-1]
        assert "fallback to AXFR" not in text
        assert notifier.acknowledged >= 1
    finally:
        knotd.send_signal(signal.SIGTERM)
        try:
            knotd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            knotd.kill()
            knotd.wait(timeout=5)
        notifier.stop()
        primary.stop()


def _nsd_config(directory: Path, port: int, primary_port: int) -> Path:
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
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: "{directory}/zone"
    allow-notify: 127.0.0.1 NOKEY
    request-xfr: 127.0.0.1@{primary_port} NOKEY
"""
    )
    return config


def test_nsd_secondary_follows_by_axfr_then_notify(node: Node, tmp_path: Path) -> None:
    if not NSD:
        pytest.skip("nsd is not installed (Debian package: nsd)")
    directory = tmp_path / "nsd"
    directory.mkdir()
    nsd_port = _free_port()
    options = make_options(notify=(f"127.0.0.1:{nsd_port}",))
    primary = DnsServer(node.store, NODE_PREFIX, node.follower, options)
    primary_port = primary.start(["127.0.0.1:0"])[0][1]
    notifier = Notifier(node.store, options)
    notifier.start()
    log = directory / "nsd.log"
    config = _nsd_config(directory, nsd_port, primary_port)
    with open(log, "w") as log_file:
        nsd = subprocess.Popen(
            [str(NSD), "-d", "-c", str(config)], stdout=log_file, stderr=log_file
        )
    try:
        first = _wait_for(nsd_port, "abc-1.8.118.88.id.example.", 10)
        assert [list(r.strings) for r in first.answer[0]] == [[b"1", b"batch", b"B-42"]]
        node.registry.create(node.admin, "88.118.8/after-notify", [value(1, "batch", "fresh")])
        second = _wait_for(nsd_port, "after-notify.8.118.88.id.example.", 5)
        assert [list(r.strings) for r in second.answer[0]] == [[b"1", b"batch", b"fresh"]]
    finally:
        nsd.send_signal(signal.SIGTERM)
        try:
            nsd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nsd.kill()
            nsd.wait(timeout=5)
        notifier.stop()
        primary.stop()
