"""The node under test: `idnode serve` (or `idnode toplevel`) started as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest import machine
from loadtest.grpc_load import product_values
from loadtest.machine import UNPINNED, Pinning

__all__ = ["Node", "default_idnode", "product_values", "say", "start", "start_toplevel"]


@dataclass
class Node:
    process: subprocess.Popen[str]
    ready: dict[str, Any]  # the node's JSON ready line: bound addresses, zone, ...
    token: str  # the administrator's
    log_path: str

    @property
    def grpc(self) -> str:
        return str(self.ready["grpc"][0])

    @property
    def dns(self) -> tuple[str, int]:
        host, _, port = str(self.ready["dns"][0]).rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def pids(self) -> list[int]:
        """The master and its workers."""
        return machine.family(self.process.pid)

    def cpu_seconds(self) -> float:
        return machine.cpu_seconds(self.pids())

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)


def default_idnode() -> str:
    """The `idnode` command installed beside this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), "idnode")


def start(
    idnode: str,
    data_dir: str,
    workers: int,
    dns: bool,
    http: bool = False,
    pinning: Pinning = UNPINNED,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    token: str = "",
) -> Node:
    """Start `idnode serve` on loopback ports of its choosing; wait for its ready line."""
    dns_flags = ["--dns-listen", "127.0.0.1:0"] if dns else ["--no-dns"]
    if http:
        dns_flags += ["--http-listen", "127.0.0.1:0"]
    command = [
        # --init: a new data dir becomes a new node; an existing one is served as it is
        idnode, "serve", "--data-dir", data_dir, "--init", "--grpc-listen", "127.0.0.1:0",
        *dns_flags,
        "--metrics-listen", "127.0.0.1:0", "--workers", str(workers), "--log-level", "warning",
        *extra,
    ]  # fmt: skip
    return _start(pinning.server_command(command), token, env)


def start_toplevel(idnode: str, data_dir: str, pinning: Pinning = UNPINNED) -> Node:
    """Start the reference top-level node `idnode toplevel` on a loopback port."""
    command = [idnode, "toplevel", "--data-dir", data_dir, "--grpc-listen", "127.0.0.1:0",
               "--log-level", "warning"]  # fmt: skip
    return _start(pinning.server_command(command), "", None)


def _start(command: list[str], token: str, env: Mapping[str, str] | None) -> Node:
    token = token or "bench-" + secrets.token_hex(16)
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- kept for the error message
        prefix="idnode-bench-", suffix=".log", delete=False
    )
    environment = {**os.environ, **(env or {}), "IDNODE_ADMIN_TOKEN": token}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, text=True, env=environment,
        start_new_session=True,  # its own process group: stop() reaches every worker
    )  # fmt: skip
    log.close()
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{") and json.loads(line).get("event") == "ready":
            return Node(process, json.loads(line), token, log.name)
    process.wait(10)
    with open(log.name, encoding="utf-8", errors="replace") as handle:
        tail = handle.read()[-2000:]
    raise SystemExit(f"{' '.join(command[:4])} exited before it was ready:\n{tail}")


def say(text: str, end: str = "\n") -> None:
    """Progress for a person, on stderr."""
    print(text, end=end, file=sys.stderr, flush=True)
