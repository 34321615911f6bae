"""Per-query CPU of the wire handler, cache hit and miss: `python -m tests.dns.measure_cpu`."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import dns.message
import dns.rdatatype

from proto import handle_pb2
from resolver.dns import dns_name
from resolver.dns.handler import Handler
from tests.dns.nodes import ZONE, make_node, make_options, value

IDENTIFIERS = 20_000
HIT_QUERIES = 200_000


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        node = make_node(Path(directory))
        batch = [
            handle_pb2.Record(
                identifier=f"88.118.8/P{i:08d}",
                values=[value(1, "URL", f"https://example.com/{i}"), value(2, "batch", "B1")],
            )
            for i in range(IDENTIFIERS)
        ]
        for start in range(0, IDENTIFIERS, 5000):
            node.registry.batch_register(node.admin, batch[start : start + 5000])
        handler = Handler(node.store, node.follower, make_options(rrl_responses_per_second=1000))
        node.follower.poll()  # catch up with the registrations before the clock starts
        queries = []
        for i in range(IDENTIFIERS):
            name = dns_name(f"88.118.8/P{i:08d}", ZONE)
            assert name is not None
            queries.append(dns.message.make_query(name, "TXT", use_edns=0).to_wire())
        misses = _cpu(handler, queries)
        hits = _cpu(handler, [queries[i % 1000] for i in range(HIT_QUERIES)])
        parse = _parse_render(queries[:20_000])
        print(f"miss (one LMDB read, answer built and cached): {misses * 1e6:.1f} us CPU/query")
        print(f"hit  (cached wire answer, ID and question patched): {hits * 1e6:.1f} us CPU/query")
        print(f"for scale, dnspython from_wire + make_response + to_wire: {parse * 1e6:.1f} us")
        node.store.close()


def _cpu(handler: Handler, queries: list[bytes]) -> float:
    handle = handler.handle_wire
    started = time.process_time()
    for query in queries:
        handle(query, "127.0.0.1")
    return (time.process_time() - started) / len(queries)


def _parse_render(queries: list[bytes]) -> float:
    started = time.process_time()
    for query in queries:
        dns.message.make_response(dns.message.from_wire(query)).to_wire()
    return (time.process_time() - started) / len(queries)


if __name__ == "__main__":
    main()
