"""A replica's DNS face: the zone a secondary transfers from it (AXFR, then IXFR) holds
what the primary's holds, and its serial moves with every applied change."""

from __future__ import annotations

from pathlib import Path

import dns.query
import dns.rdatatype
import dns.zone
import pytest

from tests.replica import nodes
from tests.sync.nodes import ADMIN, record, register_many, registry

pytestmark = pytest.mark.timeout(120)
ZONE = "id.example."


def _axfr(proc: nodes.Proc) -> dns.zone.Zone:
    host, _, port = str(proc.ready["dns"][0]).rpartition(":")
    return dns.zone.from_xfr(dns.query.xfr(host, ZONE, port=int(port), timeout=10))


def _records(zone: dns.zone.Zone) -> set[str]:
    """Every record but the SOA (each node's serial is its own)."""
    return {
        f"{name} {rdataset.rdtype} {rdata}"
        for name, rdataset in zone.iterate_rdatasets()
        if rdataset.rdtype != dns.rdatatype.SOA
        for rdata in rdataset
    }


def _serial(zone: dns.zone.Zone) -> int:
    return int(zone.find_rdataset("@", "SOA")[0].serial)


def test_a_secondary_transfers_from_a_replica_what_the_primary_serves(tmp_path: Path) -> None:
    primary = nodes.start_primary(tmp_path / "primary", dns=True)
    replica = None
    try:
        register_many(primary, "88.118", 30, "z")
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(tmp_path / "replica", primary.address, token, dns=True)
        nodes.wait_converged(primary, replica)
        before = _axfr(replica)
        assert _records(before) == _records(_axfr(primary))
        assert "z-29.118.88 16" in " ".join(_records(before))  # a TXT of the last one

        registry(primary).Create(
            record("88.118/fresh", ("URL", "https://example.com/fresh")), metadata=ADMIN, timeout=10
        )
        nodes.wait_converged(primary, replica)
        host, _, port = str(replica.ready["dns"][0]).rpartition(":")
        messages = list(
            dns.query.xfr(
                host, ZONE, rdtype=dns.rdatatype.IXFR, serial=_serial(before), port=int(port),
                timeout=10,
            )
        )  # fmt: skip
        text = "\n".join(m.to_text() for m in messages)
        assert "fresh.118.88 " in text and "https://example.com/fresh" in text
        assert sum(len(m.answer) for m in messages) < 20  # incremental, not the whole zone
        after = _axfr(replica)
        assert _records(after) == _records(_axfr(primary))
        assert dns_newer(_serial(after), _serial(before))
    finally:
        for proc in (replica, primary):
            if proc is not None:
                proc.stop()


def dns_newer(a: int, b: int) -> bool:
    return 0 < (a - b) % 2**32 < 2**31
