"""gRPC load generators: client processes that each run a closed or a paced load on request.

Closed: a fixed number of threads, each calling back to back (the rate is the figure).
Paced: calls sent on a fixed schedule whatever the answers do, each timed from when it
was due (so a slow answer cannot hide the calls it delayed); the latencies are the figure.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc

CALL_TIMEOUT_SECONDS = 30.0
BATCH_REGISTER_METHOD = "/idnode.v1.Registry/BatchRegister"
_RECORDS_FIELD_TAG = b"\x0a"  # BatchRegisterRequest.records: field 1, length-delimited


@dataclass(frozen=True)
class Call:
    """What each client call does.

    kind: health (the empty call), resolve, batch_resolve, create, batch_register.
    Identifiers resolved are `pattern.format(i)` for random i below `count`.
    """

    kind: str
    pattern: str = ""
    count: int = 0
    batch: int = 1  # identifiers per batch_resolve / batch_register call


@dataclass
class Outcome:
    """What one measurement gave, summed over the client processes."""

    operations: int = 0  # identifiers for batch calls
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the client processes'
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)  # seconds (paced loads)
    late_sends: int = 0  # paced calls sent more than 1 ms after they were due

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0


class Clients:
    """`processes` spawned client processes on one node address; close() when done."""

    def __init__(self, address: str, token: str, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._processes = []
        for index in range(processes):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, address, token, index), daemon=True
            )
            process.start()
            self._pipes.append(mine)
            self._processes.append(process)
        for pipe in self._pipes:
            pipe.recv()  # connected

    def closed(self, call: Call, seconds: float, concurrency: int) -> Outcome:
        """`concurrency` threads in all, calling back to back for `seconds`."""
        shares = _split(concurrency, len(self._pipes))
        return self._run([("closed", call, seconds, share) for share in shares])

    def paced(self, call: Call, rate: float, seconds: float) -> Outcome:
        """`rate` calls a second in all, on schedule, for `seconds`; latencies kept."""
        share = rate / len(self._pipes)
        return self._run([("paced", call, seconds, share) for _ in self._pipes])

    def _run(self, commands: list[tuple[Any, ...]]) -> Outcome:
        for pipe, command in zip(self._pipes, commands, strict=True):
            pipe.send(command)
        total = Outcome()
        for pipe in self._pipes:
            part: Outcome = pipe.recv()
            total.operations += part.operations
            total.seconds = max(total.seconds, part.seconds)
            total.cpu_seconds += part.cpu_seconds
            total.errors += part.errors
            total.first_error = total.first_error or part.first_error
            total.latencies += part.latencies
            total.late_sends += part.late_sends
        return total

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.kill()


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# In the client process -------------------------------------------------------------------


def _serve(pipe: Connection, address: str, token: str, index: int) -> None:
    channel = grpc.insecure_channel(address)
    calls = _Calls(channel, address, (("authorization", f"Bearer {token}"),), index)
    calls.make(Call("health"))()  # connected before any clock starts
    pipe.send("ready")
    while (command := pipe.recv()) is not None:
        mode, call, seconds, amount = command
        run = _closed if mode == "closed" else _paced
        pipe.send(run(calls, call, seconds, amount))
    for extra in calls.channels:
        extra.close()
    channel.close()


class _Calls:
    """Makes the callables a load runs: each returns how many identifiers it handled."""

    def __init__(
        self, channel: grpc.Channel, address: str, auth: tuple[tuple[str, str], ...], index: int
    ):
        self.address = address
        self.channels: list[grpc.Channel] = []  # opened for calls that need their own
        self.health = health_pb2_grpc.HealthStub(channel)
        self.resolver = resolver_pb2_grpc.ResolverStub(channel)
        self.registry = registry_pb2_grpc.RegistryStub(channel)
        self.auth = auth
        self.tag = f"c{index}x{random.getrandbits(32):08x}"  # unique per process and run
        self.serial = 0
        self.lock = threading.Lock()

    def next_tag(self) -> str:
        """A tag no other call of this run has: this process's, and a serial."""
        with self.lock:
            self.serial += 1
            return f"{self.tag}-{self.serial}"

    def next_identifier(self, call: Call) -> str:
        return call.pattern.format(self.next_tag())

    def make(self, call: Call) -> Callable[[], int]:
        rng = random.Random()
        if call.kind == "health":
            check = health_pb2.HealthCheckRequest(service="")
            return lambda: (self.health.Check(check, timeout=CALL_TIMEOUT_SECONDS), 1)[1]
        if call.kind == "resolve":
            return lambda: (self.resolver.Resolve(self.resolve_request(call, rng),
                                                  timeout=CALL_TIMEOUT_SECONDS), 1)[1]  # fmt: skip
        if call.kind == "batch_resolve":

            def batch_resolve() -> int:
                batch = [self.resolve_request(call, rng) for _ in range(call.batch)]
                request = resolver_pb2.BatchResolveRequest(requests=batch)
                self.resolver.BatchResolve(request, timeout=CALL_TIMEOUT_SECONDS)
                return call.batch

            return batch_resolve
        if call.kind == "create":
            return lambda: (self.registry.Create(self.record(call), metadata=self.auth,
                                                 timeout=CALL_TIMEOUT_SECONDS), 1)[1]  # fmt: skip
        if call.kind == "batch_register":
            return self.batch_register(call)
        raise ValueError(f"unknown call kind {call.kind!r}")

    def batch_register(self, call: Call) -> Callable[[], int]:
        """BatchRegister calls on a connection of their own (so that the calls of several
        threads spread over the node's workers), each request's bytes made from one
        serialised record by putting each new identifier in place of a placeholder of
        the same length: the figure is then the node's, not this client's protobuf work.
        """
        channel = grpc.insecure_channel(
            self.address, options=(("grpc.use_local_subchannel_pool", 1),)
        )
        self.channels.append(channel)
        send = channel.unary_unary(
            BATCH_REGISTER_METHOD,
            request_serializer=None,  # the request is bytes already
            response_deserializer=registry_pb2.BatchRegisterResponse.FromString,
        )
        placeholder = "#" * 32
        template = self.record(Call(call.kind, call.pattern.replace("{}", placeholder)))
        wire = template.SerializeToString()
        field = _RECORDS_FIELD_TAG + _varint(len(wire))
        marker = placeholder.encode()

        def batch_register() -> int:
            parts = []
            for _ in range(call.batch):
                tag = self.next_tag().encode().rjust(len(marker), b"0")
                parts.append(field + wire.replace(marker, tag))
            reply = send(b"".join(parts), metadata=self.auth, timeout=CALL_TIMEOUT_SECONDS)
            if reply.rejected:
                raise RuntimeError(f"{reply.rejected} records rejected")
            return call.batch

        return batch_register

    def resolve_request(self, call: Call, rng: random.Random) -> resolver_pb2.ResolveRequest:
        return resolver_pb2.ResolveRequest(
            identifier=call.pattern.format(rng.randrange(call.count))
        )

    def record(self, call: Call) -> handle_pb2.Record:
        identifier = self.next_identifier(call)
        return handle_pb2.Record(identifier=identifier, values=product_values(identifier))


def product_values(tag: object) -> list[handle_pb2.HandleValue]:
    """The two values every benchmark identifier carries (as `idnode populate` writes)."""
    return [
        handle_pb2.HandleValue(index=1, type="URL", data=f"https://example.com/p/{tag}".encode()),
        handle_pb2.HandleValue(index=2, type="batch", data=b"2026-11"),
    ]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _closed(calls: _Calls, call: Call, seconds: float, threads: int) -> Outcome:
    outcome = Outcome()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def run() -> None:
        one = calls.make(call)
        done = errors = 0
        first = ""
        while time.perf_counter() < deadline:
            try:
                done += one()
            except (grpc.RpcError, RuntimeError) as error:
                errors += 1
                first = first or _describe(error)
        with lock:
            outcome.operations += done
            outcome.errors += errors
            outcome.first_error = outcome.first_error or first

    cpu, started = _cpu(), time.perf_counter()
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    outcome.seconds = time.perf_counter() - started
    outcome.cpu_seconds = _cpu() - cpu
    return outcome


def _paced(calls: _Calls, call: Call, seconds: float, rate: float) -> Outcome:
    """Resolve calls sent as futures on schedule; each latency runs from when it was due."""
    outcome = Outcome()
    rng = random.Random()
    pending = threading.Semaphore(0)
    in_flight: set[grpc.Future[Any]] = set()  # gRPC cancels a call whose future is collected
    interval = 1.0 / rate
    cpu, started = _cpu(), time.perf_counter()

    def finished(due: float, future: grpc.Future[Any]) -> None:
        latency = time.perf_counter() - due
        failure = future.exception()
        if failure is None:
            outcome.latencies.append(latency)
        else:
            outcome.errors += 1
            outcome.first_error = outcome.first_error or _describe(failure)
        in_flight.discard(future)
        pending.release()

    sent = 0
    while (due := started + sent * interval) < started + seconds:
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        elif now - due > 0.001:
            outcome.late_sends += 1
        future = calls.resolver.Resolve.future(
            calls.resolve_request(call, rng), timeout=CALL_TIMEOUT_SECONDS
        )
        in_flight.add(future)
        future.add_done_callback(lambda f, due=due: finished(due, f))
        sent += 1
    for _ in range(sent):
        pending.acquire(timeout=CALL_TIMEOUT_SECONDS)
    outcome.operations = sent
    outcome.seconds = seconds
    outcome.cpu_seconds = _cpu() - cpu
    return outcome


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


# From the bench process ------------------------------------------------------------------


def create_enterprise(address: str, token: str, code: str) -> str:
    """Allocate enterprise prefix `code` under the node prefix; returns the prefix."""
    with grpc.insecure_channel(address) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        reply = registry.CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code=code),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=CALL_TIMEOUT_SECONDS,
        )
        return str(reply.prefix)


def seed(address: str, token: str, pattern: str, count: int, batch: int = 1000) -> None:
    """Register `pattern.format(i)` for i below `count`, every one accepted."""
    auth = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(address) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        for start in range(0, count, batch):
            records = [
                handle_pb2.Record(identifier=pattern.format(i), values=product_values(str(i)))
                for i in range(start, min(start + batch, count))
            ]
            reply = registry.BatchRegister(
                registry_pb2.BatchRegisterRequest(records=records),
                metadata=auth,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            if reply.rejected:
                raise SystemExit(f"seeding {pattern}: {reply.rejected} records rejected")


def warm(address: str, pattern: str, count: int, batch: int = 1000) -> None:
    """Resolve every `pattern.format(i)` below `count` once, so each answer is cached."""
    with grpc.insecure_channel(address) as channel:
        resolver = resolver_pb2_grpc.ResolverStub(channel)
        for start in range(0, count, batch):
            requests = [
                resolver_pb2.ResolveRequest(identifier=pattern.format(i))
                for i in range(start, min(start + batch, count))
            ]
            resolver.BatchResolve(
                resolver_pb2.BatchResolveRequest(requests=requests), timeout=CALL_TIMEOUT_SECONDS
            )
