"""Sync row: how long a registration takes to reach the top-level node, at a steady rate.

The bench starts a reference top-level node (`idnode toplevel`) and a node that
syncs to it, registers RATE identifiers a second in paced BatchRegister calls,
and polls the top-level node's ListNodes every POLL_SECONDS for the node's
acknowledged sequence. A registration's lag: when the acknowledged sequence
first covers it, minus when its call returned.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import grpc

from loadtest import node as node_process
from loadtest.grpc_load import CALL_TIMEOUT_SECONDS, product_values
from loadtest.machine import Pinning
from loadtest.report import Row, Sample, say
from proto import handle_pb2, registry_pb2, registry_pb2_grpc, sync_pb2, sync_pb2_grpc

NODE_PREFIX = "88.118"
POLL_SECONDS = 0.005
DRAIN_TIMEOUT_SECONDS = 60.0


def rows(
    idnode: str, rounds: int, seconds: float, pinning: Pinning, rate: float, batch: int
) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="idnode-bench-sync-"))
    toplevel = node_process.start_toplevel(idnode, str(root / "toplevel"), pinning)
    node = None
    try:
        with grpc.insecure_channel(toplevel.grpc) as channel:
            reply = sync_pb2_grpc.TopLevelStub(channel).AddNode(
                sync_pb2.AddNodeRequest(node_prefix=NODE_PREFIX), metadata=toplevel.auth
            )
        upstream = ["--upstream", toplevel.grpc, "--upstream-token", reply.token,
                    "--node-prefix", NODE_PREFIX]  # fmt: skip
        node = node_process.start(
            idnode, str(root / "node"), pinning.server_workers(), dns=False, pinning=pinning,
            extra=upstream,
        )  # fmt: skip
        say(f"sync: top-level node on {toplevel.grpc}, node on {node.grpc}")
        samples: list[Sample] = []
        achieved: list[float] = []
        for number in range(1, rounds + 1):
            lags, reached = _round(node, toplevel, rate, seconds, batch, number)
            cuts = statistics.quantiles(lags, n=100)
            samples.append(Sample(cuts[98] * 1000))
            achieved.append(reached)
            say(
                f"sync: round {number}/{rounds}: {reached:,.0f} registrations/s, lag p50 "
                f"{cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms, "
                f"max {max(lags) * 1000:.0f} ms"
            )
    finally:
        if node is not None:
            node.stop()
        toplevel.stop()
        shutil.rmtree(root, ignore_errors=True)
    note = (
        f"{rate:,.0f} registrations/s offered as {rate / batch:,.0f} BatchRegister calls/s of "
        f"{batch} (achieved median {statistics.median(achieved):,.0f}/s), {seconds:g} s a round; "
        f"lag from each call's return to the top-level node acknowledging it, polled every "
        f"{POLL_SECONDS * 1000:.0f} ms"
    )
    return [
        Row(f"sync lag p99 at {rate:,.0f} registrations/s", " ms", samples,
            target="< 1,000 ms", notes=[note]),
    ]  # fmt: skip


def _round(
    node: node_process.Node,
    toplevel: node_process.Node,
    rate: float,
    seconds: float,
    batch: int,
    number: int,
) -> tuple[list[float], float]:
    """Lags in seconds of every registration of one round, and the rate achieved."""
    acked: list[tuple[float, int]] = []
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(toplevel, acked, stop), daemon=True)
    poller.start()
    committed: list[tuple[float, int]] = []
    try:
        with grpc.insecure_channel(node.grpc) as channel:
            registry = registry_pb2_grpc.RegistryStub(channel)
            interval = batch / rate
            calls = max(1, int(seconds * rate / batch))
            started = time.monotonic()
            for n in range(calls):
                time.sleep(max(0.0, started + n * interval - time.monotonic()))
                records = [
                    handle_pb2.Record(
                        identifier=f"{NODE_PREFIX}/lag-{number}-{n}-{i}",
                        values=product_values(f"{number}-{n}-{i}"),
                    )
                    for i in range(batch)
                ]
                reply = registry.BatchRegister(
                    registry_pb2.BatchRegisterRequest(records=records),
                    metadata=node.auth,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
                committed.append((time.monotonic(), reply.sequence))
            reached = calls * batch / (time.monotonic() - started)
        last = committed[-1][1]
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        while not acked or acked[-1][1] < last:
            if time.monotonic() > deadline:
                raise SystemExit(f"sync: the top-level node did not acknowledge {last} in time")
            time.sleep(POLL_SECONDS)
    finally:
        stop.set()
        poller.join(10)
    return _lags(committed, acked), reached


def _poll(
    toplevel: node_process.Node, acked: list[tuple[float, int]], stop: threading.Event
) -> None:
    with grpc.insecure_channel(toplevel.grpc) as channel:
        stub = sync_pb2_grpc.TopLevelStub(channel)
        while not stop.is_set():
            reply = stub.ListNodes(
                sync_pb2.ListNodesRequest(), metadata=toplevel.auth, timeout=CALL_TIMEOUT_SECONDS
            )
            for status in reply.nodes:
                if status.node_prefix == NODE_PREFIX:
                    acked.append((time.monotonic(), status.acked_sequence))
            stop.wait(POLL_SECONDS)


def _lags(committed: list[tuple[float, int]], acked: list[tuple[float, int]]) -> list[float]:
    """For each commit: the first acknowledgement covering it, minus its time (never < 0)."""
    lags = []
    position = 0
    for when, sequence in committed:
        while acked[position][1] < sequence:
            position += 1
        lags.append(max(0.0, acked[position][0] - when))
    return lags
