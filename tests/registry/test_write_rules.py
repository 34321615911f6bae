"""Rules for what may be written: TTLs DNS can carry, types the node keeps for itself, and
prefixes that differ only by leading zeros."""

from __future__ import annotations

from typing import Any

import pytest

from proto import handle_pb2
from registry import managed, packing, values
from registry.accounts import Account
from registry.errors import InvalidValue, PrefixAlreadyExists
from registry.identifier import parse
from registry.registry import Enterprise, Registry
from registry.store import Store
from tests.registry.conftest import START_TIME, FakeClock

HandleValue = handle_pb2.HandleValue
Record = handle_pb2.Record
Op = handle_pb2.ChangeEntry.Operation


def value(index: int = 1, type: str = "URL", data: bytes = b"https://e", **more: Any) -> Any:
    return HandleValue(index=index, type=type, data=data, **more)


def last_sequence(store: Store) -> int:
    with store.read() as txn:
        return store.last_sequence(txn)


# TTLs ---------------------------------------------------------------------------------


def test_a_ttl_past_two_to_the_31_is_refused_at_write_naming_the_value(
    registry: Registry, store: Store, account_a: Account
) -> None:
    before = last_sequence(store)
    with pytest.raises(InvalidValue, match=r"value 2 \(index 5\): ttl 2147483648 is more than"):
        registry.create(account_a, "88.118.8/x", [value(), value(index=5, ttl=2**31)])
    registry.create(account_a, "88.118.8/x", [value(ttl=2**31 - 1)])
    with pytest.raises(InvalidValue, match="ttl 4294967295"):
        registry.modify_values(account_a, "88.118.8/x", [value(ttl=2**32 - 1)])
    assert last_sequence(store) == before + 1


# Reserved types -------------------------------------------------------------------------

WRITES = ["create", "add_values", "modify_values", "batch_register"]


def write(registry: Registry, caller: Account, how: str, values: list[Any]) -> Any:
    if how == "create":
        return registry.create(caller, "88.118.8/new", values)
    if how == "batch_register":
        result = registry.batch_register(caller, [Record(identifier="88.118.8/b", values=values)])
        if result.rejected:
            raise InvalidValue(result.errors[0])
        return result
    registry.create(caller, "88.118.8/old", [value(index=1)])
    return getattr(registry, how)(caller, "88.118.8/old", values)


@pytest.mark.parametrize("how", WRITES)
@pytest.mark.parametrize("who", ["enterprise", "administrator"])
@pytest.mark.parametrize("type_name", ["HS_ADMIN", "hs_site", "HS_PubKey", "HS_SITE.6"])
def test_reserved_types_are_refused_on_every_caller_write(
    registry: Registry,
    account_a: Account,
    admin: Account,
    how: str,
    who: str,
    type_name: str,
) -> None:
    caller = account_a if who == "enterprise" else admin
    with pytest.raises(InvalidValue, match=f"type {type_name} is reserved for values the node"):
        write(registry, caller, how, [value(index=1, type=type_name, data=b"x")])


def test_a_batch_item_with_a_reserved_type_is_rejected_alone(
    registry: Registry, account_a: Account
) -> None:
    result = registry.batch_register(
        account_a,
        [
            Record(identifier="88.118.8/ok", values=[value()]),
            Record(identifier="88.118.8/bad", values=[value(index=100, type="HS_ADMIN")]),
        ],
    )

    assert result.outcomes == ["created", "rejected"]
    assert "'88.118.8/bad'" in result.errors[1]
    assert "value 1 (index 100): type HS_ADMIN is reserved" in result.errors[1]


def test_the_node_writes_reserved_types_through_its_own_path(
    registry: Registry, store: Store, clock: FakeClock
) -> None:
    before = last_sequence(store)
    first = managed.put_values(
        store, "88.118/node", [value(index=100, type="HS_PUBKEY", data=b"key-1")], clock
    )
    second = managed.put_values(
        store, "88.118/node", [value(index=1, type="HS_SITE", data=b"site")], clock
    )
    replaced = managed.put_values(
        store, "88.118/node", [value(index=100, type="HS_PUBKEY", data=b"key-2")], clock
    )

    assert (first, second, replaced) == (before + 1, before + 2, before + 3)
    record = registry.resolve(parse("88.118/node"))
    assert [(v.index, v.type, v.data, v.timestamp) for v in record.values] == [
        (1, "HS_SITE", b"site", int(START_TIME)),
        (100, "HS_PUBKEY", b"key-2", int(START_TIME)),
    ]
    with store.read() as txn:
        operations = [e.operation for e in store.changes_since(txn, before)]
    assert operations == [Op.CREATE, Op.UPDATE, Op.UPDATE]


def test_the_node_path_still_checks_everything_else(store: Store) -> None:
    with pytest.raises(InvalidValue, match="ttl 2147483648"):
        managed.put_values(store, "88.118/node", [value(type="HS_SITE", ttl=2**31)])


# Leading zeros ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [("1", "01"), ("01", "1"), ("7", "007"), ("0", "00"), ("00", "000"), ("a", "0a")],
)
def test_enterprise_codes_that_differ_only_by_leading_zeros_are_refused_in_both_orders(
    registry: Registry, store: Store, admin: Account, first: str, second: str
) -> None:
    kept = registry.create_enterprise(admin, code=first)
    before = last_sequence(store)

    with pytest.raises(
        PrefixAlreadyExists,
        match=rf"prefix 88.118.{second} differs from the allocated prefix {kept.prefix} only by",
    ):
        registry.create_enterprise(admin, code=second)

    assert last_sequence(store) == before


def test_codes_that_only_share_digits_are_distinct(registry: Registry, admin: Account) -> None:
    made = [registry.create_enterprise(admin, code=code).prefix for code in ("1", "10", "100")]
    assert made == ["88.118.1", "88.118.10", "88.118.100"]


def test_the_next_free_code_skips_one_taken_with_leading_zeros(
    registry: Registry, admin: Account
) -> None:
    registry.create_enterprise(admin, code="02")
    made = [registry.create_enterprise(admin).prefix for _ in range(3)]
    assert made == ["88.118.1", "88.118.3", "88.118.4"]


def test_codes_under_a_parent_prefix_follow_the_same_rule(
    registry: Registry, admin: Account
) -> None:
    registry.create_enterprise(admin, code="8")
    registry.create_enterprise(admin, code="1", parent="88.118.8")
    with pytest.raises(
        PrefixAlreadyExists, match=r"88\.118\.8\.01 differs from .* 88\.118\.8\.1 only"
    ):
        registry.create_enterprise(admin, code="01", parent="88.118.8")
    assert registry.create_enterprise(admin, parent="88.118.8").prefix == "88.118.8.2"


@pytest.mark.parametrize(
    ("existing", "new", "twin"),
    [
        ("88.118.8.1/x", "88.118.8.01/x", "88.118.8.1"),
        ("88.118.8.01/x", "88.118.8.1/x", "88.118.8.01"),
        # levels skipped: 88.118.8.5 is not hosted itself, only 88.118.8.5.7 under it
        ("88.118.8.5.7/x", "88.118.8.05.7/x", "88.118.8.5"),
        ("88.118.8.5.7/x", "88.118.8.5.007/x", "88.118.8.5.7"),
    ],
)
def test_derived_prefixes_hosted_on_first_write_follow_the_same_rule(
    registry: Registry,
    store: Store,
    account_a: Account,
    enterprise_a: Enterprise,
    existing: str,
    new: str,
    twin: str,
) -> None:
    registry.create(account_a, existing, [value()])
    before = last_sequence(store)

    with pytest.raises(PrefixAlreadyExists, match=f"differs from the allocated prefix {twin} only"):
        registry.create(account_a, new, [value()])

    assert last_sequence(store) == before
    registry.create(account_a, existing.replace("/x", "/y"), [value()])  # the first one works on


def _with_unknown_field(message: Any, filler_bytes: int) -> bytes:
    """`message` serialised with field 127 (unknown to idnode) of `filler_bytes` after it."""
    size, length = filler_bytes, bytearray()
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    return bytes(message.SerializeToString() + b"\xfa\x07" + bytes(length) + b"x" * filler_bytes)


def test_unknown_fields_are_dropped_so_no_write_stores_bytes_the_limits_do_not_count(
    registry: Registry, store: Store, account_a: Account
) -> None:
    big = 2 * values.MAX_RECORD_BYTES
    value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://e/")
    carrier = handle_pb2.HandleValue.FromString(_with_unknown_field(value, big))
    registry.create(account_a, "88.118.8/single", [carrier])
    for name in ("88.118.8/first", "88.118.8/again"):  # a type seen before takes the fast path
        record = handle_pb2.Record(identifier=name, values=[value])
        result = registry.batch_register(
            account_a, [handle_pb2.Record.FromString(_with_unknown_field(record, big))]
        )
        assert result.outcomes == ["created"]

    with store.read() as txn:
        for name in ("88.118.8/single", "88.118.8/first", "88.118.8/again"):
            stored = bytes(txn.get(name.encode(), db=store.records))
            assert len(stored) < 100, name
            assert packing.decode(stored).values[0].data == b"https://e/"
