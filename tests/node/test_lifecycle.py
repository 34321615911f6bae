"""Start-up, SIGTERM under load, SIGHUP reload and worker restarts of a real node."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import resolver_pb2, resolver_pb2_grpc
from tests.metrics.scrape import counted_after_exit
from tests.node.conftest import run_cli, sigterm_under_load, start_node

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.slow
def test_sigterm_under_load_drains_and_exits_zero(tmp_path: Path) -> None:
    # Health watchers hold a stream open until the grace period ends: keep it short.
    node = start_node(
        tmp_path / "data", "--workers", "2", env={"IDNODE_SHUTDOWN_GRACE_SECONDS": "3"}
    )
    run_cli("enterprise", "create", "--server", node.grpc, "--code", "1")
    run_cli("register", "88.118.1/load", "--value", "URL=u", "--server", node.grpc)
    stop = threading.Event()
    answered = [0]
    failures: list[grpc.StatusCode] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def load() -> None:
        with grpc.insecure_channel(node.grpc) as channel:
            stub = resolver_pb2_grpc.ResolverStub(channel)
            request = resolver_pb2.ResolveRequest(identifier="88.118.1/load")
            while not stop.is_set():
                try:
                    reply = stub.Resolve(request, timeout=5)
                except grpc.RpcError as error:
                    assert isinstance(error, grpc.Call)
                    with lock:
                        failures.append(error.code())
                    return  # the node stopped taking calls
                assert reply.values[0].data == b"u"
                with lock:
                    answered[0] += 1

    def watch() -> None:
        with grpc.insecure_channel(node.grpc) as channel:
            stream = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30
            )
            try:
                for update in stream:
                    statuses.append(update.status)
            except grpc.RpcError:
                pass

    threads = [threading.Thread(target=load) for _ in range(4)] + [threading.Thread(target=watch)]
    code, _signalled = sigterm_under_load(node, threads, stop)

    assert code == 0, node.log()
    assert answered[0] > 100
    # A call the node refused at the moment it stopped taking calls never reached a
    # handler: UNAVAILABLE, or CANCELLED for one the transport had queued. Every call a
    # handler took was answered: the node's own count equals the answers received.
    assert set(failures) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, failures
    assert (
        counted_after_exit(Path(node.ready["metrics_dir"]), "idnode_resolve_requests", proto="grpc")
        == answered[0]
    )
    assert statuses[:1] == [SERVING] and NOT_SERVING in statuses, statuses
    assert "stopped" in node.log()


def test_sighup_applies_live_keys_and_names_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "idnode.toml"
    config.write_text('log_level = "info"\n[dns]\nrrl_responses_per_second = 1000\n')
    node = start_node(tmp_path / "data", "--config", str(config), "--dns-listen", "127.0.0.1:0")
    try:
        config.write_text(
            'log_level = "debug"\nlog_format = "json"\n'
            '[dns]\nzone = "other.example."\nrrl_responses_per_second = 5\n'
        )
        os.kill(node.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in node.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = node.log()
        assert '"changed": "log_level,log_format,dns.zone,dns.rrl_responses_per_second"' in log, log
        assert '"need_restart": "dns.zone"' in log
        assert node.process.poll() is None
        assert run_cli("whoami", "--server", node.grpc).returncode == 0

        config.write_text("workers = [\n")  # broken: refused, the node keeps running
        os.kill(node.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reload refused" not in node.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = next(line for line in node.log().splitlines() if "reload refused" in line)
        assert "is not valid TOML" in refused
        assert "idnode:" not in refused  # the log line does not repeat the command's prefix
        assert run_cli("whoami", "--server", node.grpc).returncode == 0
    finally:
        assert node.stop() == 0


@pytest.mark.slow
def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data", "--workers", "2")
    try:
        workers = [int(line.split("worker_pid=")[1].split()[0])
                   for line in node.log().splitlines() if "worker ready" in line]  # fmt: skip
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while node.log().count("worker ready") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node.log().count("worker ready") == 3, node.log()
        assert "worker died; restarting" in node.log()
        for _ in range(20):  # every worker answers, whichever the kernel picks
            assert run_cli("whoami", "--server", node.grpc).returncode == 0
    finally:
        assert node.stop() == 0
