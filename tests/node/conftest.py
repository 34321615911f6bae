"""`idnode serve` as a real subprocess on loopback, and the command line run against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ADMIN_TOKEN = "test-admin-token-0123456789"
IDNODE = str(Path(sys.executable).with_name("idnode"))
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class NodeProcess:
    process: subprocess.Popen[str]
    ready: dict[str, Any]
    data_dir: Path
    stderr_path: Path
    extra: list[str] = field(default_factory=list)

    @property
    def grpc(self) -> str:
        return str(self.ready["grpc"][0])

    @property
    def metrics(self) -> str:
        return str(self.ready["metrics"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(10)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_node(
    data_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    init: bool = True,
    preexec_fn: Callable[[], None] | None = None,
) -> NodeProcess:
    """Start `idnode serve` in its own process group and wait for its ready line
    (with --init unless told otherwise: a new data dir becomes a new node; `preexec_fn`
    runs in the child before it starts: resource limits, for example)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = data_dir.parent / f"{data_dir.name}.stderr.log"
    command = [
        IDNODE, "serve", "--data-dir", str(data_dir), "--node-prefix", "88.118",
        "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", *args,
    ]  # fmt: skip
    if init:
        command.append("--init")
    if "--dns-listen" not in args:
        command.append("--no-dns")
    if "--workers" not in args:
        command += ["--workers", "1"]
    environment = {**os.environ, "IDNODE_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
    with open(stderr_path, "a") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=environment,
            start_new_session=True, preexec_fn=preexec_fn,
        )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            ready = json.loads(line)
            if ready.get("event") == "ready":
                return NodeProcess(process, ready, data_dir, stderr_path)
    process.kill()
    process.wait(10)
    process.stdout.close()
    raise AssertionError(f"node did not become ready:\n{stderr_path.read_text()}")


def sigterm_under_load(
    node: NodeProcess, threads: list[threading.Thread], stop: threading.Event
) -> tuple[int, float]:
    """Start `threads` (a load on `node`), give them a second, send the node SIGTERM and
    wait for it to exit; then set `stop` and join them. Returns the node's exit code and
    the monotonic time SIGTERM was sent."""
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    signalled = time.monotonic()
    os.kill(node.process.pid, signal.SIGTERM)
    code = node.process.wait(60)
    stop.set()
    for thread in threads:
        thread.join(30)
    node.stop()
    return code, signalled


def run_cli(*args: str, token: str | None = ADMIN_TOKEN, timeout: float = 60.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IDNODE_")}
    if token:
        environment["IDNODE_TOKEN"] = token
    return subprocess.run(
        [IDNODE, *args], capture_output=True, text=True, timeout=timeout, env=environment,
        input=stdin,
    )  # fmt: skip


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    started = start_node(tmp_path / "data")
    try:
        yield started
    finally:
        started.stop()
