"""The SOA serial moves with every change, with every apex change, and never goes back."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from registry.store import Store, StoreOptions
from resolver.dns import DnsConfigError, records, serial
from resolver.dns.handler import Handler
from tests.dns.nodes import ZONE, Node, make_options, value, zone_serial
from tests.dns.test_handler import ask


def _soa_serial(handler: Handler) -> int:
    return int(ask(handler, ZONE, "SOA").answer[0][0].serial)


def test_a_nameserver_change_moves_the_serial(node: Node) -> None:
    before = _soa_serial(Handler(node.store, node.follower, make_options()))
    other = make_options(nameservers=("ns.other.example.",))
    after_handler = Handler(node.store, node.follower, other)
    after = _soa_serial(after_handler)
    assert serial.newer(after, before)  # before: the same serial, so secondaries never refreshed
    ns = ask(after_handler, ZONE, "NS").answer[0]
    assert [r.target.to_text() for r in ns] == ["ns.other.example."]
    again = Handler(node.store, node.follower, other)  # the same apex: no new epoch
    assert _soa_serial(again) == after


def test_glue_changes_move_the_serial(node: Node) -> None:
    base = {"nameservers": ("ns1.id.example.",), "glue": ("ns1.id.example.=192.0.2.1",)}
    first = _soa_serial(Handler(node.store, node.follower, make_options(**base)))
    base["glue"] = ("ns1.id.example.=192.0.2.2",)
    second = _soa_serial(Handler(node.store, node.follower, make_options(**base)))
    assert serial.newer(second, first)


def test_every_change_adds_one(node: Node, handler: Handler) -> None:
    first = _soa_serial(handler)
    node.registry.create(node.admin, "88.118.8/one-more", [value(1, "x", "y")])
    assert _soa_serial(handler) == (first + 1) & serial.SERIAL_MASK


def test_a_restored_older_backup_serves_a_newer_serial(node: Node, tmp_path: Path) -> None:
    apex = records.Apex(ZONE, ("ns.x.example.",)).fingerprint
    serial.begin_epoch(node.store, apex, clock_ms=lambda: 5_000_000)
    backup = tmp_path / "backup"
    node.store.copy_to(str(backup))
    for i in range(20):
        node.registry.create(node.admin, f"88.118.8/after-backup-{i}", [value(1, "x", "y")])
    served = zone_serial(node)
    restored = Store(str(backup), StoreOptions(map_size_bytes=64 << 20, durable=False))
    try:
        with restored.read() as txn:
            old = serial.serial_at(serial.read(restored, txn), restored.last_sequence(txn))
        assert serial.newer(served, old)  # the backup alone would go back
        epoch = serial.begin_epoch(restored, apex, clock_ms=lambda: 5_000_000 + 60_000)
        assert serial.newer(epoch.serial, served)
    finally:
        restored.close()


def test_an_epoch_never_goes_back_even_when_the_clock_does(node: Node) -> None:
    apex = b"apex-fp1"
    first = serial.begin_epoch(node.store, apex, clock_ms=lambda: 9_000_000)
    second = serial.begin_epoch(node.store, apex, clock_ms=lambda: 1_000)  # clock set back
    assert second.serial == first.serial + 1


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(1, 0, True), (0, 1, False), (0, 0xFFFFFFFF, True), (0x80000000, 0, False), (5, 5, False)],
)
def test_serial_arithmetic_is_rfc_1982(a: int, b: int, expected: bool) -> None:
    assert serial.newer(a, b) is expected


def test_in_zone_nameservers_have_addresses(handler: Handler) -> None:
    a = ask(handler, "ns1.id.example.", "A")
    assert [r.address for r in a.answer[0]] == ["127.0.0.1"]
    aaaa = ask(handler, "NS1.id.example.", "AAAA")
    assert [r.address for r in aaaa.answer[0]] == ["::1"]
    nodata = ask(handler, "ns1.id.example.", "TXT")
    assert nodata.rcode() == 0 and nodata.answer == [] and nodata.authority


def test_configured_glue_is_served_and_its_parents_exist(node: Node) -> None:
    options = make_options(
        nameservers=("a.ns.id.example.", "ns.elsewhere.example."),
        glue=("a.ns.id.example.=198.51.100.7", "A.NS.id.example=2001:db8::7"),
    )
    handler = Handler(node.store, node.follower, options)
    assert [r.address for r in ask(handler, "a.ns.id.example.", "A").answer[0]] == ["198.51.100.7"]
    parent = ask(handler, "ns.id.example.", "A")
    assert parent.rcode() == 0 and parent.answer == []  # an empty non-terminal


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"nameservers": ("ns2.id.example.",)}, "nameservers"),  # in the zone, no address
        ({"nameservers": ("ns1.id.example.",), "glue": ("ns1.id.example.=not-an-ip",)}, "glue"),
        ({"nameservers": ("ns.x.example.",), "glue": ("ns.x.example.=192.0.2.1",)}, "glue"),
        ({"glue": ("ns9.id.example.=192.0.2.1",)}, "glue"),  # not a nameserver
    ],
)
def test_glue_mistakes_name_their_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(DnsConfigError, match=field):
        make_options(**fields)


def test_a_nameserver_among_identifier_names_is_refused(node: Node) -> None:
    options = make_options(
        nameservers=("ns.88.id.example.",), glue=("ns.88.id.example.=192.0.2.1",)
    )
    with pytest.raises(DnsConfigError, match="nameservers"):
        Handler(node.store, node.follower, options)


def _ixfr_types(handler: Handler, client_serial: int) -> list[int]:
    query = dns.message.make_query(ZONE, "IXFR")
    query.authority.append(
        dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {client_serial} 0 0 0 0")
    )
    replies = handler.handle_tcp(query.to_wire(), "127.0.0.1")
    messages = [dns.message.from_wire(r, one_rr_per_rrset=True) for r in replies]
    return [rrset.rdtype for message in messages for rrset in message.answer for _ in rrset]


def test_ixfr_across_an_apex_change_is_a_full_transfer(node: Node) -> None:
    old = _soa_serial(Handler(node.store, node.follower, make_options()))
    node.registry.create(node.admin, "88.118.8/later", [value(1, "x", "y")])
    moved = Handler(node.store, node.follower, make_options(nameservers=("ns.b.example.",)))
    types = _ixfr_types(moved, old)
    assert dns.rdatatype.NS in types and types.count(dns.rdatatype.SOA) == 2  # AXFR-style


def test_ixfr_from_before_a_restart_is_still_incremental(node: Node) -> None:
    handler = Handler(node.store, node.follower, make_options())
    old = _soa_serial(handler)
    serial.begin_epoch(node.store, handler.apex.fingerprint)  # the node restarted
    node.registry.create(node.admin, "88.118.8/later", [value(1, "x", "y")])
    types = _ixfr_types(handler, old)
    assert dns.rdatatype.NS not in types and types.count(dns.rdatatype.SOA) == 4


def test_an_epoch_begun_elsewhere_reaches_a_running_handler(node: Node, handler: Handler) -> None:
    before = _soa_serial(handler)
    serial.begin_epoch(node.store, handler.apex.fingerprint, clock_ms=lambda: before + 10_000)
    handler._serial_recheck = 0.0  # as if a second had passed
    assert _soa_serial(handler) == (before + 10_000) & serial.SERIAL_MASK
