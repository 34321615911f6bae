"""Real secondaries (Knot DNS, NSD): AXFR on start, then NOTIFY + IXFR after registrations."""

from __future__ import annotations

import time
from pathlib import Path

import dns.rcode
import pytest

from tests.dns import secondaries
from tests.dns.nodes import Node, make_options, value


def test_knot_secondary_follows_by_axfr_then_notify_and_ixfr(node: Node, tmp_path: Path) -> None:
    if not secondaries.available("knot"):
        pytest.skip("knotd is not installed (Debian package: knot)")
    port = secondaries.free_port()
    options = make_options(notify=(f"127.0.0.1:{port}",))
    with (
        secondaries.primary(node, options) as (_, primary_port),
        secondaries.notifying(node, options) as notifier,
        secondaries.secondary("knot", tmp_path, primary_port, port) as knot,
    ):
        first = secondaries.wait_for_txt(port, "abc-1.8.118.88.id.example.", 10, knot.log)
        assert first == [[b"1", b"batch", b"B-42"]]
        node.registry.create(node.admin, "88.118.8/after-notify", [value(1, "batch", "fresh")])
        started = time.monotonic()
        second = secondaries.wait_for_txt(port, "after-notify.8.118.88.id.example.", 5)
        assert second == [[b"1", b"batch", b"fresh"]]
        assert time.monotonic() - started < 5
        node.registry.modify_values(node.admin, "88.118.8/abc-1", [value(1, "batch", "B-43")])
        node.registry.delete(node.admin, "88.118.8/JXDY2106023")
        deadline = time.monotonic() + 5
        while True:  # a change and a delete travel as one IXFR with removals
            reply = secondaries.ask(port, "abc-1.8.118.88.id.example.", "TXT")
            if reply is not None and reply.answer and b"B-43" in reply.answer[0][0].strings:
                break
            assert time.monotonic() < deadline, "the secondary missed the change"
            time.sleep(0.1)
        while True:
            gone = secondaries.ask(port, "b32-99c48m9i64o3cc1i6c.8.118.88.id.example.", "TXT")
            if gone is not None and gone.rcode() == dns.rcode.NXDOMAIN:
                break
            assert time.monotonic() < deadline, "the secondary missed the delete"
            time.sleep(0.1)
        text = knot.log.read_text()
        assert "notify, incoming" in text
        assert "IXFR, incoming" in text and "finished" in text.split("IXFR, incoming")[-1]
        assert "fallback to AXFR" not in text
        assert notifier.acknowledged >= 1


def test_nsd_secondary_follows_by_axfr_then_notify(node: Node, tmp_path: Path) -> None:
    if not secondaries.available("nsd"):
        pytest.skip("nsd is not installed (Debian package: nsd)")
    port = secondaries.free_port()
    options = make_options(notify=(f"127.0.0.1:{port}",))
    with (
        secondaries.primary(node, options) as (_, primary_port),
        secondaries.notifying(node, options),
        secondaries.secondary("nsd", tmp_path, primary_port, port) as nsd,
    ):
        first = secondaries.wait_for_txt(port, "abc-1.8.118.88.id.example.", 10, nsd.log)
        assert first == [[b"1", b"batch", b"B-42"]]
        node.registry.create(node.admin, "88.118.8/after-notify", [value(1, "batch", "fresh")])
        second = secondaries.wait_for_txt(port, "after-notify.8.118.88.id.example.", 5, nsd.log)
        assert second == [[b"1", b"batch", b"fresh"]]
