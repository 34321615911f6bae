"""Random sequences of registry writes agree with a plain model and with a replay of the log."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from proto import handle_pb2
from registry import accounts, values
from registry.errors import HandleAlreadyExists, HandleNotFound, ValueAlreadyExists, ValueNotFound
from registry.registry import Registry
from registry.store import Store, StoreOptions
from tests.registry.conftest import FakeClock

Op = handle_pb2.ChangeEntry.Operation
Content = tuple[str, bytes, bool]  # type, data, publicly readable
Model = dict[str, dict[int, Content]]

KEYS = st.sampled_from(
    ["88.118.8/a", "88.118.8/A", "88.118.8/a/b.c", "88.118.8.1/derived", "88.118/node"]
)
CONTENTS = st.tuples(
    st.sampled_from(["URL", "EMAIL", "batch"]), st.binary(max_size=400), st.booleans()
)
VALUES = st.dictionaries(st.integers(1, 6), CONTENTS, max_size=4)
SOME_VALUES = st.dictionaries(st.integers(1, 6), CONTENTS, min_size=1, max_size=3)


def to_values(contents: dict[int, Content]) -> list[Any]:
    return [
        handle_pb2.HandleValue(index=i, type=t, data=d, public_read=p)
        for i, (t, d, p) in contents.items()
    ]


def to_model(record_values: Any) -> dict[int, Content]:
    return {v.index: (v.type, v.data, values.is_public(v)) for v in record_values}


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="idnode-model-")
        # A small map, so that some runs also grow it.
        self.store = Store(self.dir, StoreOptions(map_size_bytes=64 * 1024, durable=False))
        self.clock = FakeClock()
        self.registry = Registry(self.store, "88.118", clock=self.clock)
        self.registry.ensure_node_prefix()
        admin_token = accounts.ensure_admin(self.store, None)
        assert admin_token is not None
        self.admin = accounts.authenticate(self.store, admin_token)
        self.registry.create_enterprise(self.admin, code="8")
        self.model: Model = {}

    @rule(key=KEYS, contents=VALUES)
    def create(self, key: str, contents: dict[int, Content]) -> None:
        if key in self.model:
            with pytest.raises(HandleAlreadyExists):
                self.registry.create(self.admin, key, to_values(contents))
            return
        self.registry.create(self.admin, key, to_values(contents))
        self.model[key] = dict(contents)

    @rule(key=KEYS, contents=SOME_VALUES)
    def add(self, key: str, contents: dict[int, Content]) -> None:
        current = self.model.get(key)
        if current is None:
            with pytest.raises(HandleNotFound):
                self.registry.add_values(self.admin, key, to_values(contents))
        elif current.keys() & contents.keys():
            with pytest.raises(ValueAlreadyExists):
                self.registry.add_values(self.admin, key, to_values(contents))
        else:
            self.registry.add_values(self.admin, key, to_values(contents))
            current.update(contents)

    @rule(key=KEYS, contents=SOME_VALUES)
    def modify(self, key: str, contents: dict[int, Content]) -> None:
        current = self.model.get(key)
        if current is None:
            with pytest.raises(HandleNotFound):
                self.registry.modify_values(self.admin, key, to_values(contents))
        elif contents.keys() - current.keys():
            with pytest.raises(ValueNotFound):
                self.registry.modify_values(self.admin, key, to_values(contents))
        else:
            self.registry.modify_values(self.admin, key, to_values(contents))
            current.update(contents)

    @rule(key=KEYS, indexes=st.sets(st.integers(1, 6), min_size=1, max_size=2))
    def remove(self, key: str, indexes: set[int]) -> None:
        current = self.model.get(key)
        if current is None:
            with pytest.raises(HandleNotFound):
                self.registry.remove_values(self.admin, key, sorted(indexes))
        elif indexes - current.keys():
            with pytest.raises(ValueNotFound):
                self.registry.remove_values(self.admin, key, sorted(indexes))
        else:
            self.registry.remove_values(self.admin, key, sorted(indexes))
            for index in indexes:
                del current[index]

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        if key not in self.model:
            with pytest.raises(HandleNotFound):
                self.registry.delete(self.admin, key)
            return
        self.registry.delete(self.admin, key)
        del self.model[key]

    @rule(items=st.lists(st.tuples(KEYS, VALUES), max_size=4))
    def batch(self, items: list[tuple[str, dict[int, Content]]]) -> None:
        expected: list[str] = []
        for key, contents in items:
            before = self.model.get(key)
            outcome = "created" if before is None else "unchanged"
            if before is not None and before != contents:
                outcome = "updated"
            expected.append(outcome)
            self.model[key] = dict(contents)
        records = [handle_pb2.Record(identifier=k, values=to_values(c)) for k, c in items]

        result = self.registry.batch_register(self.admin, records)

        assert result.outcomes == expected

    @rule(seconds=st.integers(1, 100_000))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += seconds

    @invariant()
    def store_log_and_model_agree(self) -> None:
        with self.store.read() as txn:
            stored = {key: to_model(r.values) for key, r in self.store.iter_records(txn)}
            log = list(self.store.changes_since(txn, 0))
            last = self.store.last_sequence(txn)
        assert [e.sequence for e in log] == list(range(1, last + 1))
        replayed: Model = {}
        for entry in log:
            if entry.operation == Op.DELETE:
                del replayed[entry.identifier]
            elif entry.operation in (Op.CREATE, Op.UPDATE):
                assert (entry.operation == Op.CREATE) == (entry.identifier not in replayed)
                replayed[entry.identifier] = to_model(entry.record.values)
        assert stored == replayed == self.model

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_registry_agrees_with_a_model_and_with_a_replay_of_its_change_log() -> None:
    run_state_machine_as_test(
        RegistryMachine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )
