"""gRPC rows: durable creates and Resolve against the empty call, batch register and resolve.

The reference is a gRPC health check on the same server, measured in the same
run with the same clients: it does next to nothing, so it is the framework's
ceiling for one call. Where the bench pins, batch register is measured twice: on
the server CPUs, like every row, and with the node on every CPU, as it runs by
default, since its target is the machine's rate and not a ratio.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from loadtest import node as node_process
from loadtest.grpc_load import Call, Clients, Outcome, create_enterprise, seed, warm
from loadtest.machine import Pinning
from loadtest.report import Row, Sample, interleaved, repeated, say

PREFIX_CODE = "77"
CONCURRENCY = 16
RESOLVE_IDENTIFIERS = 10_000
BATCH_REGISTER_RECORDS = 1000  # what `idnode import` sends per call by default
BATCH_REGISTER_CLIENTS = 4  # connections, so that every worker of the node takes batches
BATCH_RESOLVE_IDENTIFIERS = 100
HEALTH = Call("health")


@dataclass
class Settings:
    idnode: str
    rounds: int
    seconds: float
    pinning: Pinning


class Measurer:
    """Loads through the clients and charges the node's CPU time to each operation."""

    def __init__(self, node: node_process.Node, clients: Clients, client_cpus: int) -> None:
        self.node = node
        self.clients = clients
        self.client_cpus = client_cpus
        self.errors: dict[str, str] = {}

    def closed(self, call: Call, seconds: float, concurrency: int) -> Sample:
        before = self.node.cpu_seconds()
        outcome = self.clients.closed(call, seconds, concurrency)
        return self._sample(call, outcome, self.node.cpu_seconds() - before, outcome.rate)

    def _sample(self, call: Call, outcome: Outcome, server_cpu: float, value: float) -> Sample:
        if outcome.errors:
            self.errors[call.kind] = f"{outcome.errors} failed calls, first: {outcome.first_error}"
            say(f"  errors in {call.kind}: {self.errors[call.kind]}")
        return Sample(
            value=value,
            server_cpu_us_per_op=server_cpu / outcome.operations * 1e6
            if outcome.operations
            else None,
            client_cpu_share=outcome.cpu_seconds / (outcome.seconds * self.client_cpus)
            if outcome.seconds
            else None,
        )

    def notes(self, kind: str) -> list[str]:
        return [f"errors: {self.errors[kind]}"] if kind in self.errors else []


def rows(settings: Settings) -> list[Row]:
    measured = _pinned_rows(settings)
    if settings.pinning.pinned:
        measured.insert(2, _whole_machine_batches(settings))
    return measured


def _whole_machine_batches(settings: Settings) -> Row:
    """Batch register with the node on every CPU, a worker each (as it runs by default),
    the clients still on theirs: the rate the machine gives an import, where the pinned
    row gives one CPU's."""
    pinning = settings.pinning
    everything = Pinning(server=tuple(sorted({*pinning.server, *pinning.client})))
    workers = everything.server_workers()
    with _serving(settings, everything) as (measure, prefix):
        batches = Call("batch_register", f"{prefix}/b{{}}", batch=BATCH_REGISTER_RECORDS)
        registered = repeated(
            "gRPC BatchRegister, node on every CPU",
            settings.rounds,
            lambda: measure.closed(batches, settings.seconds, BATCH_REGISTER_CLIENTS),
            " ids/s",
        )
        return Row(
            f"batch register as above, node on all {workers} CPUs ({workers} workers; "
            f"clients share {measure.client_cpus}), identifiers", "/s", registered,
            target="≥ 100,000/s, durable", notes=measure.notes("batch_register"),
        )  # fmt: skip


def _pinned_rows(settings: Settings) -> list[Row]:
    with _serving(settings, settings.pinning) as (measure, prefix):
        resolvable = f"{prefix}/r{{:07d}}"
        seed(measure.node.grpc, measure.node.token, resolvable, RESOLVE_IDENTIFIERS)
        return _measure(settings, measure, prefix, resolvable)


@contextlib.contextmanager
def _serving(settings: Settings, pinning: Pinning) -> Iterator[tuple[Measurer, str]]:
    """A node on `pinning`'s server CPUs (a worker each) with an enterprise prefix, and
    clients on the bench's client CPUs; stopped and its data dir removed afterwards."""
    data_dir = tempfile.mkdtemp(prefix="idnode-bench-grpc-")
    workers = pinning.server_workers()
    node = node_process.start(settings.idnode, data_dir, workers, dns=False, pinning=pinning)
    clients: Clients | None = None
    try:
        prefix = create_enterprise(node.grpc, node.token, PREFIX_CODE)
        client_cpus = len(settings.pinning.client) or 1
        clients = Clients(node.grpc, node.token, client_cpus)
        say(f"gRPC: node up on {node.grpc} ({workers} worker(s)), {client_cpus} client process(es)")
        yield Measurer(node, clients, client_cpus), prefix
    finally:
        if clients is not None:
            clients.close()
        node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _measure(settings: Settings, measure: Measurer, prefix: str, resolvable: str) -> list[Row]:
    rounds, seconds = settings.rounds, settings.seconds
    create = Call("create", f"{prefix}/s{{}}")
    health_c, creates = interleaved(
        "gRPC durable Create vs empty call",
        rounds,
        lambda: measure.closed(HEALTH, seconds, CONCURRENCY),
        lambda: measure.closed(create, seconds, CONCURRENCY),
    )
    batches = Call("batch_register", f"{prefix}/b{{}}", batch=BATCH_REGISTER_RECORDS)
    registered = repeated(
        "gRPC BatchRegister",
        rounds,
        lambda: measure.closed(batches, seconds, BATCH_REGISTER_CLIENTS),
        " ids/s",
    )
    resolve = Call("resolve", resolvable, count=RESOLVE_IDENTIFIERS)
    warm(measure.node.grpc, resolvable, RESOLVE_IDENTIFIERS)  # every answer cached
    measure.closed(resolve, 1.0, CONCURRENCY)  # and the clients' connections busy
    health_r, resolves = interleaved(
        "gRPC Resolve (cached) vs empty call",
        rounds,
        lambda: measure.closed(HEALTH, seconds, CONCURRENCY),
        lambda: measure.closed(resolve, seconds, CONCURRENCY),
    )
    batch = Call("batch_resolve", resolvable, RESOLVE_IDENTIFIERS, BATCH_RESOLVE_IDENTIFIERS)
    resolved = repeated(
        "gRPC BatchResolve", rounds, lambda: measure.closed(batch, seconds, CONCURRENCY), " ids/s"
    )
    empty = "empty call (health Check)"
    return [
        Row(
            f"single durable creates, {CONCURRENCY} concurrent clients", "/s", creates,
            health_c, empty, "≥ 0.8×", measure.notes("create"),
        ),
        Row(
            f"batch register ({BATCH_REGISTER_RECORDS} records per call, "
            f"{BATCH_REGISTER_CLIENTS} clients), "
            "identifiers", "/s", registered, target="≥ 100,000/s, durable",
            notes=measure.notes("batch_register"),
        ),
        Row(
            f"gRPC Resolve, cached answer, {CONCURRENCY} concurrent clients", "/s", resolves,
            health_r, empty, "≥ 0.9×", measure.notes("resolve"),
        ),
        Row(
            f"batch resolve ({BATCH_RESOLVE_IDENTIFIERS} per call, {CONCURRENCY} clients), "
            "identifiers", "/s", resolved, target="≥ 100,000/s",
            notes=measure.notes("batch_resolve"),
        ),
    ]  # fmt: skip
