"""Debian's HAProxy with deploy/haproxy/haproxy.cfg before a primary and two replicas."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"
NOWHERE = "127.0.0.1:1"  # a backend left unused (its health check fails: DOWN)
START_TIMEOUT_SECONDS = 30.0


def find() -> str | None:
    """The haproxy command, or None where it is not installed."""
    found = shutil.which("haproxy")
    return found or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Balancer:
    process: subprocess.Popen[bytes]
    grpc: str  # host:port of its gRPC front end
    http: str
    log_path: Path | None = None

    def log(self) -> str:
        """What it logged (health checks: a server going DOWN or UP), when it logs to a file."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start(
    primary_grpc: str,
    replicas_grpc: tuple[str, str],
    primary_http: str = NOWHERE,
    replicas_http: tuple[str, str] = (NOWHERE, NOWHERE),
    log_path: Path | None = None,
) -> Balancer:
    """HAProxy on free loopback ports, once it listens (its log to `log_path`, else none).

    Raises SystemExit when haproxy is missing or exits, or does not listen in time."""
    haproxy = find()
    if haproxy is None:
        raise SystemExit("haproxy is not installed (make system-deps installs Debian 'haproxy')")
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "IDNODE_LB_LOG": "stderr", "IDNODE_LB_MAXCONN": "2000",
        "IDNODE_LB_GRPC": f"127.0.0.1:{grpc_port}", "IDNODE_LB_HTTP": f"127.0.0.1:{http_port}",
        "IDNODE_PRIMARY_GRPC": primary_grpc, "IDNODE_PRIMARY_HTTP": primary_http,
    }  # fmt: skip
    for number, (grpc_at, http_at) in enumerate(zip(replicas_grpc, replicas_http, strict=True), 1):
        env[f"IDNODE_REPLICA{number}_GRPC"] = grpc_at
        env[f"IDNODE_REPLICA{number}_HTTP"] = http_at
    with open(log_path or os.devnull, "wb") as log:
        process = subprocess.Popen(
            [haproxy, "-db", "-f", str(CONFIG)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    balancer = Balancer(process, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{http_port}", log_path)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        if _listens(grpc_port):
            return balancer
        time.sleep(0.1)
    balancer.stop()
    raise SystemExit(
        f"HAProxy did not listen on 127.0.0.1:{grpc_port} (exit {process.poll()}): "
        + balancer.log()[-2000:]
    )


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
