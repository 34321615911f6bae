"""Durable single creates against the empty call under two serving models, measured.

The node serves gRPC from a thread pool (grpc.server): a create's thread queues its write
for group commit and sleeps until the commit that holds it, and is then woken. This
script asks what another model would give: grpc.aio, one event loop, where a create's
checks run on the loop and its write goes to one committer thread that commits a group
and resolves the group's futures with one wake-up of the loop. Each model runs as its own
server process (on CPU 0 where there are two) with the same Registry on a durable store;
16 closed-loop clients (on the other CPU) call the empty health check and Create, in
turns, round by round; printed: calls a second, server CPU per call, and the ratio of
creates to empty calls per model (medians and spread); the loop's committer also prints
how many writes its groups hold.

    python -m tests.grpc.measure_serving --rounds 5 --seconds 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent import futures
from functools import partial
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from loadtest.grpc_load import Call, Clients
from loadtest.machine import cpu_seconds, family
from proto import handle_pb2, registry_pb2
from registry import accounts, values
from registry.identifier import parse
from registry.registry import Registry, WriteResult
from registry.store import Store, StoreOptions
from registry.writebatch import WriteBatch
from resolver.grpc_registry import _write_response as write_response

PREFIX = "88.118.7"
SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
CLIENTS = 16


def _open(data_dir: str) -> tuple[Registry, accounts.Account, str]:
    store = Store(data_dir, StoreOptions(durable=True))
    registry = Registry(store, "88.118")
    token = accounts.ensure_admin(store, None)
    assert token is not None  # a new store's first admin
    admin = accounts.authenticate(store, token)
    registry.create_enterprise(admin, code="7")
    return registry, admin, token


def _handlers(
    check: Callable[..., Any], create: Callable[..., Any]
) -> list[grpc.GenericRpcHandler[Any, Any]]:
    return [
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    check,
                    request_deserializer=health_pb2.HealthCheckRequest.FromString,
                    response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
                )
            },
        ),
        grpc.method_handlers_generic_handler(
            "idnode.v1.Registry",
            {
                "Create": grpc.unary_unary_rpc_method_handler(
                    create,
                    request_deserializer=handle_pb2.Record.FromString,
                    response_serializer=registry_pb2.WriteResponse.SerializeToString,
                )
            },
        ),
    ]


def serve_threads(data_dir: str) -> None:
    """The node's model: a thread per call, group commit among the calls' threads."""
    registry, admin, token = _open(data_dir)

    def create(record: handle_pb2.Record, _context: Any) -> registry_pb2.WriteResponse:
        return write_response(registry.create(admin, record.identifier, record.values))

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=CLIENTS),
        handlers=_handlers(lambda _request, _context: SERVING, create),
        options=[("grpc.so_reuseport", 0)],
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, token, flush=True)
    server.wait_for_termination()


class Committer:
    """One thread that runs queued writes in one transaction per group and resolves their
    futures on the event loop, with one call into the loop per group. The loop hands over
    what queued during one of its turns at the turn's end, so that groups can form."""

    def __init__(self, registry: Registry, loop: asyncio.AbstractEventLoop) -> None:
        self._registry = registry
        self._loop = loop
        self._queue: list[tuple[Callable[[WriteBatch], WriteResult], asyncio.Future[Any]]] = []
        self._ready = threading.Condition()
        self.groups = self.writes = 0
        self._pending: list[tuple[Callable[[WriteBatch], WriteResult], asyncio.Future[Any]]] = []
        threading.Thread(target=self._run, daemon=True).start()

    def submit(self, work: Callable[[WriteBatch], WriteResult]) -> asyncio.Future[Any]:
        """Queue `work`; the loop hands what queued in one of its turns over at its end."""
        future = self._loop.create_future()
        if not self._pending:
            self._loop.call_soon(self._hand_over)
        self._pending.append((work, future))
        return future

    def _hand_over(self) -> None:
        with self._ready:
            self._queue += self._pending
            self._ready.notify()
        self._pending = []

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                group, self._queue = self._queue, []
            self.groups += 1
            self.writes += len(group)
            if self.groups % 2000 == 0:
                mean = self.writes / self.groups
                print(f"loop committer: {mean:.2f} writes a group", file=sys.stderr, flush=True)
            results = self._registry.store.write(partial(_run_all, group))
            self._loop.call_soon_threadsafe(_resolve, group, results)


def _run_all(group: list[tuple[Any, asyncio.Future[Any]]], batch: WriteBatch) -> list[Any]:
    return [work(batch) for work, _ in group]


def _resolve(group: list[tuple[Any, asyncio.Future[Any]]], results: list[WriteResult]) -> None:
    for (_work, future), result in zip(group, results, strict=True):
        future.set_result(result)


def serve_loop(data_dir: str) -> None:
    """One event loop: checks on the loop, writes committed by one thread per group."""
    registry, admin, token = _open(data_dir)

    async def main() -> None:
        committer = Committer(registry, asyncio.get_running_loop())

        async def check(_request: Any, _context: Any) -> health_pb2.HealthCheckResponse:
            return SERVING

        async def create(record: handle_pb2.Record, _context: Any) -> registry_pb2.WriteResponse:
            parsed = parse(record.identifier)
            stamped = values.normalise(record.values, registry._now())

            def work(batch: WriteBatch) -> WriteResult:
                registry._authorize(batch, admin, parsed.prefix, {})
                key = str(parsed)
                sequence = batch.put_record(key, handle_pb2.Record(values=stamped), created=True)
                return WriteResult(key, "created", sequence, stamped)

            return write_response(await committer.submit(work))

        server = grpc.aio.server(
            handlers=_handlers(check, create), options=[("grpc.so_reuseport", 0)]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, token, flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


MODELS = {"threads": serve_threads, "loop": serve_loop}


def _start(model: str, data_dir: str, cpu: str) -> tuple[subprocess.Popen[str], str, str]:
    command = [sys.executable, "-m", "tests.grpc.measure_serving", "--serve", model, data_dir]
    if cpu:
        command = ["taskset", "-c", cpu, *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port, token = process.stdout.readline().split()
    return process, f"127.0.0.1:{port}", token


def _spread(figures: list[float]) -> str:
    return f"{statistics.median(figures):,.2f} (min {min(figures):,.2f}, max {max(figures):,.2f})"


def measure(rounds: int, seconds: float) -> None:
    two = len(os.sched_getaffinity(0)) >= 2
    if two:
        os.sched_setaffinity(0, {1})  # the clients, spawned from here, inherit it
    with tempfile.TemporaryDirectory() as scratch:
        servers = {
            model: _start(model, os.path.join(scratch, model), "0" if two else "")
            for model in MODELS
        }
        clients = {
            model: Clients(address, token, 2) for model, (_, address, token) in servers.items()
        }
        figures: dict[str, list[float]] = {}
        try:
            for number in range(1, rounds + 1):
                for model, (process, _, _) in servers.items():
                    pids = family(process.pid)
                    for kind in ("health", "create"):
                        call = Call(kind, f"{PREFIX}/{model}{{}}")
                        before = cpu_seconds(pids)
                        outcome = clients[model].closed(call, seconds, CLIENTS)
                        used = cpu_seconds(pids) - before
                        assert not outcome.errors, outcome.first_error
                        figures.setdefault(f"{model} {kind} /s", []).append(outcome.rate)
                        figures.setdefault(f"{model} {kind} server CPU us/call", []).append(
                            used / outcome.operations * 1e6
                        )
                    ratio = figures[f"{model} create /s"][-1] / figures[f"{model} health /s"][-1]
                    figures.setdefault(f"{model} creates / empty calls", []).append(ratio)
                    print(f"round {number} {model}: creates / empty calls {ratio:.2f}x", flush=True)
        finally:
            for each in clients.values():
                each.close()
            for process, _, _ in servers.values():
                process.kill()
                process.wait()
    for name, values_ in figures.items():
        print(f"{name}: {_spread(values_)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--serve", nargs=2, metavar=("MODEL", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        model, data_dir = args.serve
        os.makedirs(data_dir, exist_ok=True)
        MODELS[model](data_dir)
    else:
        measure(args.rounds, args.seconds)


if __name__ == "__main__":
    main()
