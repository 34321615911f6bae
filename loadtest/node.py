"""The node under test: `idnode serve` started as a subprocess, and what the benchmarks share."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from proto import handle_pb2


@dataclass
class Node:
    process: subprocess.Popen[str]
    ready: dict[str, Any]  # the node's JSON ready line: bound addresses, zone, ...
    token: str  # the administrator's

    @property
    def grpc(self) -> str:
        return str(self.ready["grpc"][0])

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        if self.process.stdout is not None:
            self.process.stdout.close()


def default_idnode() -> str:
    """The `idnode` command installed beside this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), "idnode")


def start(idnode: str, data_dir: str, workers: int, dns: bool, http: bool = False) -> Node:
    """Start `idnode serve` on loopback ports of its choosing; wait for its ready line."""
    token = "bench-" + secrets.token_hex(16)
    dns_flags = ["--dns-listen", "127.0.0.1:0"] if dns else ["--no-dns"]
    if http:
        dns_flags += ["--http-listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        [idnode, "serve", "--data-dir", data_dir, "--init", "--grpc-listen", "127.0.0.1:0",
         *dns_flags, "--metrics-listen", "127.0.0.1:0", "--workers", str(workers),
         "--log-level", "warning"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "IDNODE_ADMIN_TOKEN": token},
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{") and json.loads(line).get("event") == "ready":
            return Node(process, json.loads(line), token)
    raise SystemExit("idnode serve exited before it was ready")


def product_values(i: int) -> list[handle_pb2.HandleValue]:
    """The two values every benchmark identifier carries."""
    return [
        handle_pb2.HandleValue(index=1, type="URL", data=f"https://example.com/p/{i}".encode()),
        handle_pb2.HandleValue(index=2, type="batch", data=b"2026-11"),
    ]


def say(text: str, end: str = "\n") -> None:
    """Progress for a person, on stderr."""
    print(text, end=end, file=sys.stderr, flush=True)
