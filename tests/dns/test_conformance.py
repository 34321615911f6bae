"""Knot DNS, NSD and BIND load the zone, both zone checkers accept it, and every
secondary answers a generated set of names exactly as idnode does, over UDP and TCP."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from resolver.dns import dns_name
from resolver.dns.handler import Handler
from tests.dns import secondaries
from tests.dns.nodes import ZONE, Node, make_options, value, zone_serial
from tests.dns.zonecheck import LONG_SUFFIX, LONGER_SUFFIX, axfr_zone, names_to_ask, populate

KINDS = ["knot", "nsd", "bind"]
Answer = tuple[object, ...]


def _ask(port: int, qname: str, qtype: str, tcp: bool) -> Answer:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    if tcp:
        reply = dns.query.tcp(query, "127.0.0.1", port=port, timeout=3)
    else:
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=3, ignore_trailing=True)
    truncated = bool(reply.flags & dns.flags.TC)
    answer = [] if truncated else sorted(
        (r.name.to_text().lower(), r.rdtype, r.ttl, sorted(x.to_text() for x in r))
        for r in reply.answer
    )  # fmt: skip
    soa = [r.rdtype for r in reply.authority if r.rdtype == dns.rdatatype.SOA]
    return reply.rcode(), bool(reply.flags & dns.flags.AA), answer, soa


def _check_zone(path: Path) -> None:
    for command in (
        [secondaries.tool("kzonecheck") or "kzonecheck", "-o", ZONE, str(path)],
        [secondaries.tool("named-checkzone") or "named-checkzone", ZONE, str(path)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{command[0]}: {done.stdout}{done.stderr}"


def _dump(port: int, path: Path) -> Path:
    zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=port, timeout=10))
    zone.to_file(str(path), relativize=False)
    return path


def _populate_all(node: Node) -> list[str]:
    deleted = populate(node)
    # One identifier whose public values exceed a DNS message (BIND's AXFR used to fail).
    many = [value(i, "note", "v" * 1000) for i in range(1, 81)]
    node.registry.create(node.admin, "88.118.8/many", many)
    node.registry.create(node.admin, "88.118.8/dup", [value(70000, "URL", "https://d/"),
                                                       value(70001, "URL", "https://d/")])  # fmt: skip
    node.registry.create(node.admin, "88.118.8/ttl", [value(1, "batch", "t", ttl=2**31 - 1)])
    return deleted


@pytest.mark.parametrize("kind", KINDS)
def test_a_secondary_loads_the_zone_and_answers_as_idnode(
    node: Node, tmp_path: Path, kind: str
) -> None:
    if not secondaries.available(kind) or not secondaries.tool("kzonecheck"):
        pytest.skip(f"{kind} or kzonecheck is not installed (make system-deps)")
    deleted = _populate_all(node)
    port = secondaries.free_port()
    options = make_options(notify=(f"127.0.0.1:{port}",))
    with (
        secondaries.primary(node, options) as (primary, primary_port),
        secondaries.secondary(kind, tmp_path, primary_port, port) as second,
    ):
        secondaries.wait_for_serial(port, zone_serial(node), 20, second.log)
        _check_zone(second.zone_file or _dump(port, tmp_path / "dump.zone"))
        names = names_to_ask(axfr_zone(primary.handler), deleted)
        differ: list[tuple[object, ...]] = []
        for qname in names:
            for qtype, tcp in (("TXT", False), ("TXT", True), ("URI", True), ("AAAA", False)):
                ours = _ask(primary_port, qname, qtype, tcp)
                theirs = _ask(port, qname, qtype, tcp)
                if ours != theirs:
                    differ.append((qname, qtype, tcp, ours, theirs))
        for qname, qtype in ((ZONE, "SOA"), (ZONE, "NS"), ("ns1." + ZONE, "A")):
            if _ask(primary_port, qname, qtype, True) != _ask(port, qname, qtype, True):
                differ.append((qname, qtype, True, None, None))
        assert differ == [], f"{len(differ)} answers differ, first: {differ[:3]}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_nameserver_change_reaches_the_secondary(node: Node, tmp_path: Path, kind: str) -> None:
    if not secondaries.available(kind):
        pytest.skip(f"{kind} is not installed (make system-deps)")
    port = secondaries.free_port()
    first = make_options(notify=(f"127.0.0.1:{port}",))
    with contextlib.ExitStack() as running:
        with secondaries.primary(node, first) as (_, primary_port):
            second = running.enter_context(
                secondaries.secondary(kind, tmp_path, primary_port, port)
            )
            secondaries.wait_for_serial(port, zone_serial(node), 20, second.log)
        # The node restarts with other nameservers.
        changed = make_options(
            notify=(f"127.0.0.1:{port}",), nameservers=("a.ns.example.", "b.ns.example.")
        )
        running.enter_context(secondaries.primary(node, changed, primary_port))
        running.enter_context(secondaries.notifying(node, changed))
        secondaries.wait_for_serial(port, zone_serial(node), 20, second.log)
        ns = dns.query.tcp(dns.message.make_query(ZONE, "NS"), "127.0.0.1", port=port, timeout=3)
        assert sorted(r.target.to_text() for r in ns.answer[0]) == [
            "a.ns.example.",
            "b.ns.example.",
        ]


def test_unbound_with_strict_qname_minimisation_resolves_long_names(
    node: Node, tmp_path: Path
) -> None:
    if not secondaries.tool("unbound"):
        pytest.skip("unbound is not installed (make system-deps)")
    populate(node)
    with (
        secondaries.primary(node, make_options()) as (primary, primary_port),
        secondaries.unbound(tmp_path, primary_port) as resolver,
    ):
        for suffix in (LONG_SUFFIX, LONGER_SUFFIX):
            name = dns_name(f"88.118.8/{suffix}", ZONE) or ""
            query = dns.message.make_query(name, "TXT")
            query.flags |= dns.flags.RD
            reply = dns.query.udp(query, "127.0.0.1", port=resolver, timeout=5)
            assert reply.rcode() == 0 and reply.answer, (name, reply)
        missing = dns.message.make_query("private-only.8.118.88." + ZONE, "TXT")
        reply = dns.query.udp(missing, "127.0.0.1", port=resolver, timeout=5)
        assert reply.rcode() == 3
        handler: Handler = primary.handler
        assert handler.stats is not None
