"""Worker RSS of a real node through the oversized-input attacks, phase by phase.

    .venv/bin/python -m tests.attack.measure_memory

To measure another checkout's node with the same client, put that checkout first
on the node's path: `PYTHONPATH=/path/to/checkout .venv/bin/python -m ...`.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import grpc

from proto import resolver_pb2
from tests.attack.conftest import Target, attacked

MB = 1 << 20
ResolveRequest = resolver_pb2.ResolveRequest


def _quietly(call: object) -> None:
    with contextlib.suppress(grpc.RpcError):
        call()  # type: ignore[operator]


def _phases(target: Target) -> None:
    def report(label: str) -> None:
        print(f"{label:<44} worker RSS {target.worker_rss_bytes() / MB:6.0f} MB", flush=True)

    report("started")
    for n in range(40):
        request = ResolveRequest(identifier=f"88.118.1/{n}" + "x" * MB)
        _quietly(lambda request=request: target.resolver.Resolve(request))
    report("40 Resolves of 1 MB identifiers")
    flood = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier=f"{n}" + "w" * 30_000) for n in range(1000)]
    )
    for round_ in range(1, 4):
        _quietly(lambda: target.resolver.BatchResolve(flood))
        report(f"BatchResolve of 1,000 x 30 KB, #{round_}")
    smaller = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier=f"88.118.1/{n}" + "v" * 3000) for n in range(1000)]
    )
    for round_ in range(1, 4):
        _quietly(lambda: target.resolver.BatchResolve(smaller))
        report(f"BatchResolve of 1,000 x 3 KB, #{round_}")


def main() -> None:
    with attacked(Path(tempfile.mkdtemp()) / "data") as target:
        _phases(target)


if __name__ == "__main__":
    main()
