"""`make run`'s launcher: seeds the demo, serves the link it prints, syncs to its top-level
node, stops cleanly on Ctrl-C."""

from __future__ import annotations

import http.client
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.node.conftest import run_cli
from tests.sync.nodes import free_port


def test_ctrl_c_stops_the_node_before_its_top_level_node(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("grpc", "dns", "http", "metrics", "toplevel")}
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "idnode.cli.demo", "--data-dir", str(tmp_path / "var"),
             "--grpc-listen", f"127.0.0.1:{ports['grpc']}",
             "--dns-listen", f"127.0.0.1:{ports['dns']}",
             "--http-listen", f"127.0.0.1:{ports['http']}",
             "--metrics-listen", f"127.0.0.1:{ports['metrics']}", "--workers", "1"],
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
            env={**os.environ, "IDNODE_DEMO_TOPLEVEL": f"127.0.0.1:{ports['toplevel']}"},
            preexec_fn=lambda: os.umask(0),  # the demo's files are private whatever the umask
        )  # fmt: skip
    try:
        assert demo.stdout is not None
        assert '"event": "ready"' in demo.stdout.readline()
        server = f"127.0.0.1:{ports['grpc']}"
        shown = run_cli("resolve", "88.118.8/JXDY2106023", "--server", server, token=None)
        assert "product.name" in shown.stdout
        web = f"http://127.0.0.1:{ports['http']}"  # the link printed for a browser works
        assert f"open in a browser: {web}/88.118.8/JXDY2106023?noredirect" in log_path.read_text()
        scanned = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=10)
        scanned.request("GET", "/88.118.8/JXDY2106023")  # what `curl -i` shows: a redirect
        answer = scanned.getresponse()
        assert (answer.status, answer.getheader("Location")) == (
            302, "https://example.com/products/JXDY2106023",
        )  # fmt: skip
        scanned.close()
        var = tmp_path / "var"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [var, *var.iterdir()]}
        assert modes["var"] == 0o700
        for name in ("data.mdb", "lock.mdb", "admin.token", "demo-enterprise.token"):
            assert modes[name] == 0o600, (name, oct(modes[name]))
        deadline = time.monotonic() + 20
        while "upstream 127.0.0.1" not in (status := run_cli(
            "status", "--data-dir", str(tmp_path / "var")
        ).stdout) or ": ok" not in status:  # fmt: skip
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        toplevel = _child_running("toplevel", demo.pid)
        mark = log_path.stat().st_size
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        time.sleep(0.5)  # the node drains for 1 s; its upstream must outlive that
        assert "stopped" not in log_path.read_text()[mark:]
        assert _alive(toplevel), "the top-level node stopped before the node"
        assert demo.wait(60) == 0
        assert not _alive(toplevel)
        after = log_path.read_text()[mark:]
        assert "WARNING" not in after and "ERROR" not in after, after
        assert "stopped" in after
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)
        if demo.stdout is not None:
            demo.stdout.close()


def _child_running(word: str, parent: int) -> int:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    for pid in map(int, children):
        if word in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return pid
    raise AssertionError(f"no child process running {word}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited
