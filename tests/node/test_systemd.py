"""Running under systemd: the unit passes systemd's own checks; the node speaks sd_notify."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.conftest import IDNODE, start_node

UNIT = Path(__file__).parents[2] / "deploy" / "systemd" / "idnode.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 2.5  # systemd's scale: 0 safe ... 10 unsafe; "OK" is below 4


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit as installed, with ExecStart pointing at this checkout's idnode."""
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    unit = tmp_path / "idnode.service"
    unit.write_text(UNIT.read_text().replace("/opt/idnode/bin/idnode", IDNODE))
    return unit


def test_the_unit_verifies(unit_here: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit_here)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_the_unit_is_sandboxed(unit_here: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", str(unit_here)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout
    text = UNIT.read_text()
    for line in ("Type=notify", "UMask=0077", "StateDirectoryMode=0700", "ProtectSystem=strict"):
        assert f"\n{line}\n" in text, line


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for the service manager's NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(30)
    try:
        yield sock
    finally:
        sock.close()


def _next(manager: socket.socket, word: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = manager.recv(4096).decode().splitlines()
        message = dict(line.split("=", 1) for line in lines)
        if word in message:
            return message
    raise AssertionError(f"no {word} from the node")


def test_ready_reloading_and_stopping_are_notified(tmp_path: Path, manager: socket.socket) -> None:
    node = start_node(tmp_path / "data", env={"NOTIFY_SOCKET": manager.getsockname()})
    try:
        ready = _next(manager, "READY")
        assert ready["READY"] == "1" and "serving" in ready["STATUS"]
        os.kill(node.process.pid, signal.SIGHUP)
        assert "MONOTONIC_USEC" in _next(manager, "RELOADING")
        assert _next(manager, "READY")["READY"] == "1"
        node.process.send_signal(signal.SIGTERM)
        assert _next(manager, "STOPPING")["STOPPING"] == "1"
    finally:
        assert node.stop() == 0


def test_under_systemd_the_admin_token_goes_to_a_private_file(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data", env={"IDNODE_ADMIN_TOKEN": "", "INVOCATION_ID": "t"})
    try:
        token_file = tmp_path / "data" / "admin.token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert token.startswith("idn_")
        assert token not in node.log()
        assert str(token_file) in node.log()
        whoami = subprocess.run([IDNODE, "whoami", "--server", node.grpc, "--token", token],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        assert whoami.returncode == 0 and "admin" in whoami.stdout
    finally:
        node.stop()
