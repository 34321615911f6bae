"""Registry operations: single writes, batch register, listing, enterprises, prefixes, referral."""

from __future__ import annotations

import re
from typing import Any

import pytest

from proto import handle_pb2
from registry import accounts
from registry.accounts import Account
from registry.errors import (
    AuthenticationRequired,
    HandleAlreadyExists,
    HandleNotFound,
    InvalidIdentifier,
    InvalidRequest,
    InvalidValue,
    NotResponsible,
    PermissionDenied,
    PrefixAlreadyExists,
    PrefixNotFound,
    Referred,
    TooLarge,
    ValueAlreadyExists,
    ValueNotFound,
)
from registry.identifier import parse
from registry.registry import (
    MAX_BATCH_RECORDS,
    REFERRAL_TTL_SECONDS,
    Enterprise,
    Referral,
    Registry,
)
from registry.store import Store
from tests.registry.conftest import START_TIME, FakeClock

Op = handle_pb2.ChangeEntry.Operation
HandleValue = handle_pb2.HandleValue
Record = handle_pb2.Record
ID = "88.118.8/JXDY2106023"


def url(index: int = 1, data: str = "https://example.com/p", **more: Any) -> Any:
    return HandleValue(index=index, type="URL", data=data.encode(), **more)


def text(index: int, type: str, data: str, **more: Any) -> Any:
    return HandleValue(index=index, type=type, data=data.encode(), **more)


def last_sequence(store: Store) -> int:
    with store.read() as txn:
        return store.last_sequence(txn)


def log(store: Store, after: int = 0) -> list[tuple[Any, str]]:
    with store.read() as txn:
        return [(e.operation, e.identifier) for e in store.changes_since(txn, after)]


def home_of(node: Registry, prefix: str) -> str | None:
    info = node.home(prefix)
    return None if info is None else str(info.prefix)


def resolved(node: Registry, identifier: str) -> list[tuple[int, str, bytes]]:
    return [(v.index, v.type, v.data) for v in node.resolve(parse(identifier)).values]


# Create, change, delete ---------------------------------------------------------


def test_create_stores_stamped_values_and_returns_what_it_did(
    registry: Registry, store: Store, account_a: Account
) -> None:
    before = last_sequence(store)

    result = registry.create(account_a, ID, [text(2, "product.name", "发动机"), url(1)])

    assert result.identifier == ID
    assert result.operation == "created"
    assert result.sequence == before + 1
    assert [v.index for v in result.values] == [1, 2]
    assert {v.timestamp for v in result.values} == {int(START_TIME)}
    record = registry.resolve(parse(ID))
    assert record.identifier == ID
    assert list(record.values) == result.values
    assert record.values[0].ttl == 86400
    assert log(store, before) == [(Op.CREATE, ID)]


def test_create_canonicalises_the_prefix_and_keeps_the_suffix_case(
    registry: Registry, admin: Account
) -> None:
    owner = accounts.authenticate(
        registry.store, registry.create_enterprise(admin, code="Ab-c").token
    )

    result = registry.create(owner, "88.118.AB-C/MixedCase", [url()])

    assert result.identifier == "88.118.ab-c/MixedCase"
    assert resolved(registry, "88.118.aB-c/MixedCase") == [(1, "URL", b"https://example.com/p")]
    with pytest.raises(HandleNotFound):
        registry.resolve(parse("88.118.ab-c/mixedcase"))
    with pytest.raises(HandleAlreadyExists):
        registry.create(owner, "88.118.ab-c/MixedCase", [url()])


def test_create_of_existing_identifier_raises_and_changes_nothing(
    registry: Registry, store: Store, account_a: Account
) -> None:
    registry.create(account_a, ID, [url(data="https://first")])
    before = last_sequence(store)

    with pytest.raises(HandleAlreadyExists, match=re.escape(f"{ID} already exists")):
        registry.create(account_a, ID, [url(data="https://2nd")])

    assert last_sequence(store) == before
    assert resolved(registry, ID) == [(1, "URL", b"https://first")]


@pytest.mark.parametrize(
    ("identifier", "new", "error", "message"),
    [
        ("88.118.8", [url()], InvalidIdentifier, "no '/'"),
        ("88.118.8/a\x00", [url()], InvalidIdentifier, "control character"),
        (ID, [url(index=0)], InvalidValue, "index must be between"),
        (ID, [url(), url()], InvalidValue, "appears twice"),
        ("88.119.8/x", [url()], NotResponsible, "not under this node's prefix 88.118"),
    ],
)
def test_create_rejects_bad_requests(
    registry: Registry,
    store: Store,
    admin: Account,
    enterprise_a: Enterprise,
    identifier: str,
    new: list[Any],
    error: type[Exception],
    message: str,
) -> None:
    before = last_sequence(store)

    with pytest.raises(error, match=message):
        registry.create(admin, identifier, new)

    assert last_sequence(store) == before


def test_write_where_no_prefix_is_hosted_is_not_responsible(store: Store, admin: Account) -> None:
    bare = Registry(store, "88.120")  # its node prefix was never hosted

    with pytest.raises(NotResponsible, match="not hosted on this node"):
        bare.create(admin, "88.120.1/x", [url()])


def test_add_values_keeps_old_values_and_stamps_only_the_new(
    registry: Registry, store: Store, clock: FakeClock, account_a: Account
) -> None:
    registry.create(account_a, ID, [url(1), url(5, "https://five")])
    clock.now += 60

    result = registry.add_values(account_a, ID, [text(3, "batch", "B-1")])

    assert result.operation == "values_added"
    assert [(v.index, v.timestamp) for v in result.values] == [
        (1, int(START_TIME)),
        (3, int(START_TIME) + 60),
        (5, int(START_TIME)),
    ]
    assert [index for index, _, _ in resolved(registry, ID)] == [1, 3, 5]
    assert log(store, result.sequence - 1) == [(Op.UPDATE, ID)]


def test_modify_values_replaces_by_index_and_keeps_the_rest(
    registry: Registry, account_a: Account
) -> None:
    registry.create(account_a, ID, [url(1), text(2, "batch", "B-1")])

    result = registry.modify_values(account_a, ID, [text(2, "batch", "B-2", ttl=60)])

    assert result.operation == "values_modified"
    assert resolved(registry, ID) == [(1, "URL", b"https://example.com/p"), (2, "batch", b"B-2")]
    assert registry.resolve(parse(ID)).values[1].ttl == 60


def test_put_record_creates_then_replaces_every_value(
    registry: Registry, store: Store, account_a: Account
) -> None:
    created = registry.put_record(account_a, ID, [url(1), text(2, "batch", "B-1")])
    replaced = registry.put_record(account_a, ID, [text(5, "batch", "B-2")])

    assert (created.operation, replaced.operation) == ("created", "values_replaced")
    assert resolved(registry, ID) == [(5, "batch", b"B-2")]
    assert [op for op, _ in log(store, created.sequence - 1)] == [Op.CREATE, Op.UPDATE]


def test_put_record_without_overwrite_refuses_an_existing_identifier(
    registry: Registry, account_a: Account
) -> None:
    registry.put_record(account_a, ID, [url(1)])

    with pytest.raises(HandleAlreadyExists):
        registry.put_record(account_a, ID, [url(2)], overwrite=False)
    assert resolved(registry, ID) == [(1, "URL", b"https://example.com/p")]


def test_put_values_adds_and_replaces_by_index(registry: Registry, account_a: Account) -> None:
    registry.create(account_a, ID, [url(1), text(2, "batch", "B-1")])

    result = registry.put_values(account_a, ID, [text(2, "batch", "B-2"), text(3, "lot", "L")])

    assert result.operation == "values_modified"
    assert resolved(registry, ID) == [
        (1, "URL", b"https://example.com/p"), (2, "batch", b"B-2"), (3, "lot", b"L"),
    ]  # fmt: skip


def test_put_values_without_overwrite_refuses_a_taken_index_and_changes_nothing(
    registry: Registry, account_a: Account, account_b: Account
) -> None:
    registry.create(account_a, ID, [url(1)])

    with pytest.raises(ValueAlreadyExists):
        registry.put_values(account_a, ID, [url(1, "https://x"), url(2)], overwrite=False)
    with pytest.raises(PermissionDenied):
        registry.put_values(account_b, ID, [url(2)])
    with pytest.raises(HandleNotFound):
        registry.put_values(account_a, "88.118.8/absent", [url(2)])
    assert resolved(registry, ID) == [(1, "URL", b"https://example.com/p")]


def test_remove_values_removes_by_index(registry: Registry, account_a: Account) -> None:
    registry.create(account_a, ID, [url(1), url(2), url(3)])

    result = registry.remove_values(account_a, ID, [1, 3])

    assert result.operation == "values_removed"
    assert [index for index, _, _ in resolved(registry, ID)] == [2]


def test_delete_removes_the_identifier_and_logs_it(
    registry: Registry, store: Store, account_a: Account
) -> None:
    registry.create(account_a, ID, [url()])

    result = registry.delete(account_a, ID)

    assert (result.identifier, result.operation, result.values) == (ID, "deleted", [])
    with pytest.raises(HandleNotFound):
        registry.resolve(parse(ID))
    assert log(store, result.sequence - 1) == [(Op.DELETE, ID)]
    with pytest.raises(HandleNotFound):
        registry.delete(account_a, ID)


@pytest.mark.parametrize(
    ("operation", "error", "message"),
    [
        (lambda r, c: r.add_values(c, ID, [url(1)]), ValueAlreadyExists, "value at index 1"),
        (lambda r, c: r.modify_values(c, ID, [url(7)]), ValueNotFound, "no value at index 7"),
        (lambda r, c: r.remove_values(c, ID, [1, 7]), ValueNotFound, "no value at index 7"),
        (lambda r, c: r.remove_values(c, ID, []), InvalidRequest, "no indexes"),
        (lambda r, c: r.add_values(c, ID, [url(0)]), InvalidValue, "index must be"),
        (lambda r, c: r.add_values(c, "88.118.8/absent", [url(9)]), HandleNotFound, "absent"),
        (lambda r, c: r.modify_values(c, "88.118.8/absent", [url(1)]), HandleNotFound, "absent"),
        (lambda r, c: r.remove_values(c, "88.118.8/absent", [1]), HandleNotFound, "absent"),
        (lambda r, c: r.delete(c, "88.118.8/absent"), HandleNotFound, "not found"),
        (lambda r, c: r.delete(c, "88.118.8/"), InvalidIdentifier, "suffix is empty"),
    ],
    ids=[
        "add-taken-index",
        "modify-absent-index",
        "remove-absent-index",
        "remove-nothing",
        "add-invalid-value",
        "add-to-absent",
        "modify-absent",
        "remove-from-absent",
        "delete-absent",
        "delete-invalid",
    ],
)
def test_failed_change_raises_and_writes_nothing(
    registry: Registry,
    store: Store,
    account_a: Account,
    operation: Any,
    error: type[Exception],
    message: str,
) -> None:
    registry.create(account_a, ID, [url(1), url(2)])
    before = last_sequence(store)

    with pytest.raises(error, match=message):
        operation(registry, account_a)

    assert last_sequence(store) == before
    assert [index for index, _, _ in resolved(registry, ID)] == [1, 2]


BIG = "x" * 65535


@pytest.mark.parametrize(
    ("existing", "operation"),
    [
        ([url(i) for i in range(1, 1001)], lambda r, c: r.add_values(c, ID, [url(1001)])),
        (
            [url(i, BIG) for i in range(1, 16)] + [url(16)],
            lambda r, c: r.modify_values(c, ID, [url(16, BIG)]),
        ),
    ],
    ids=["add-past-1000-values", "modify-past-1-MiB"],
)
def test_change_that_would_exceed_the_record_limits_is_refused(
    registry: Registry, store: Store, account_a: Account, existing: list[Any], operation: Any
) -> None:
    registry.create(account_a, ID, existing)
    before = last_sequence(store)

    with pytest.raises(TooLarge, match="more than"):
        operation(registry, account_a)

    assert last_sequence(store) == before
    assert len(registry.resolve(parse(ID)).values) == len(existing)


# Resolve ------------------------------------------------------------------------


def test_resolve_outside_the_node_prefix_is_not_responsible(registry: Registry) -> None:
    with pytest.raises(NotResponsible):
        registry.resolve(parse("88.119.8/x"))


def test_resolve_of_absent_identifier_is_not_found(
    registry: Registry, enterprise_a: Enterprise
) -> None:
    with pytest.raises(HandleNotFound, match=re.escape("88.118.8/absent not found")):
        registry.resolve(parse("88.118.8/absent"))


# Batch register -----------------------------------------------------------------


def batch(*items: tuple[str, list[Any]]) -> list[Any]:
    return [Record(identifier=identifier, values=vals) for identifier, vals in items]


def test_batch_register_creates_then_rerun_is_all_unchanged_and_unlogged(
    registry: Registry, store: Store, clock: FakeClock, account_a: Account
) -> None:
    items = batch(
        ("88.118.8/a", [url(1, "https://a")]),
        ("88.118.8/b", [url(1, "https://b"), text(2, "batch", "B")]),
        ("88.118.8/c", [url(1, "https://c", public_read=False)]),
    )
    before = last_sequence(store)

    first = registry.batch_register(account_a, items)

    assert (first.created, first.updated, first.unchanged, first.rejected) == (3, 0, 0, 0)
    assert first.outcomes == ["created"] * 3
    assert first.errors == [""] * 3
    assert first.sequence == before + 3 == last_sequence(store)
    assert log(store, before) == [(Op.CREATE, f"88.118.8/{s}") for s in "abc"]

    clock.now += 3600  # a later rerun stamps new times, yet nothing changed
    again = registry.batch_register(account_a, items)

    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 0)
    assert again.outcomes == ["unchanged"] * 3
    assert last_sequence(store) == first.sequence
    assert again.sequence == first.sequence
    assert registry.resolve(parse("88.118.8/a")).values[0].timestamp == int(START_TIME)


def test_batch_register_updates_in_place_never_delete_then_insert(
    registry: Registry, store: Store, account_a: Account
) -> None:
    registry.create(account_a, "88.118.8/a", [url(1, "https://old"), url(2, "https://gone")])
    registry.create(account_a, "88.118.8/b", [url(1, "https://b")])
    before = last_sequence(store)

    result = registry.batch_register(
        account_a,
        batch(
            ("88.118.8/a", [url(1, "https://new")]),
            ("88.118.8/b", [url(1, "https://b")]),
            ("88.118.8/c", [url(1, "https://c")]),
        ),
    )

    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    assert result.outcomes == ["updated", "unchanged", "created"]
    assert log(store, before) == [(Op.UPDATE, "88.118.8/a"), (Op.CREATE, "88.118.8/c")]
    assert resolved(registry, "88.118.8/a") == [(1, "URL", b"https://new")]


def test_batch_register_rejects_bad_items_with_reasons_and_commits_the_rest(
    registry: Registry, store: Store, account_a: Account, enterprise_b: Enterprise
) -> None:
    result = registry.batch_register(
        account_a,
        batch(
            ("88.118.8/ok-1", [url()]),
            ("88.118.8", [url()]),
            ("88.118.8/bad-value", [url(0)]),
            ("88.118.9/theirs", [url()]),
            ("88.119.1/elsewhere", [url()]),
            ("88.118.8/ok-2", [url()]),
            ("88.118.9/theirs-too", [url()]),
        ),
    )

    assert (result.created, result.updated, result.unchanged, result.rejected) == (2, 0, 0, 5)
    assert result.outcomes == [
        "created",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "created",
        "rejected",
    ]
    assert result.errors[0] == result.errors[5] == ""
    assert "'88.118.8'" in result.errors[1] and "no '/'" in result.errors[1]
    assert "'88.118.8/bad-value'" in result.errors[2] and "index must be" in result.errors[2]
    assert "may not write under prefix 88.118.9" in result.errors[3]
    assert "88.119.1" in result.errors[4] and "not under this node's prefix" in result.errors[4]
    assert "may not write under prefix 88.118.9" in result.errors[6]
    assert [identifier for _, identifier in log(store)][-2:] == ["88.118.8/ok-1", "88.118.8/ok-2"]
    with pytest.raises(HandleNotFound):
        registry.resolve(parse("88.118.9/theirs"))


def test_batch_item_past_the_record_limits_is_rejected_alone(
    registry: Registry, account_a: Account
) -> None:
    result = registry.batch_register(
        account_a,
        batch(
            ("88.118.8/huge", [url(i) for i in range(1, 1002)]),
            ("88.118.8/fine", [url()]),
        ),
    )

    assert result.outcomes == ["rejected", "created"]
    assert "record has 1001 values, more than 1000" in result.errors[0]


def test_batch_register_of_the_same_identifier_twice_applies_both_in_order(
    registry: Registry, account_a: Account
) -> None:
    result = registry.batch_register(
        account_a,
        batch(
            ("88.118.8/a", [url(1, "https://1")]),
            ("88.118.8/a", [url(1, "https://1")]),
            ("88.118.8/A", [url(1, "https://2")]),
            ("88.118.8/a", [url(1, "https://3")]),
        ),
    )

    assert result.outcomes == ["created", "unchanged", "created", "updated"]
    assert resolved(registry, "88.118.8/a") == [(1, "URL", b"https://3")]
    assert resolved(registry, "88.118.8/A") == [(1, "URL", b"https://2")]


def test_batch_register_takes_ten_thousand_and_refuses_more(
    registry: Registry, store: Store, account_a: Account
) -> None:
    items = batch(*((f"88.118.8/n{i:05d}", [url()]) for i in range(MAX_BATCH_RECORDS)))

    assert MAX_BATCH_RECORDS == 10_000
    assert registry.batch_register(account_a, items).created == 10_000
    before = last_sequence(store)
    with pytest.raises(TooLarge, match="10001 records, more than 10000"):
        registry.batch_register(account_a, [*items, Record(identifier="88.118.8/one-more")])
    assert last_sequence(store) == before


def test_batch_register_needs_a_caller(registry: Registry, enterprise_a: Enterprise) -> None:
    with pytest.raises(AuthenticationRequired):
        registry.batch_register(None, batch(("88.118.8/a", [url()])))


def test_empty_batch_does_nothing(registry: Registry, store: Store, account_a: Account) -> None:
    before = last_sequence(store)

    result = registry.batch_register(account_a, [])

    assert (result.created, result.updated, result.unchanged, result.rejected) == (0, 0, 0, 0)
    assert last_sequence(store) == before


# Listing ------------------------------------------------------------------------


@pytest.fixture
def listed(
    registry: Registry, admin: Account, account_a: Account, enterprise_b: Enterprise
) -> list[str]:
    """Five identifiers under 88.118.8, and neighbours that must not be listed with them."""
    suffixes = ["e", "a", "c/d", "B", "b"]
    for suffix in suffixes:
        registry.create(account_a, f"88.118.8/{suffix}", [url(), url(2, public_read=False)])
    registry.create(account_a, "88.118.8.1/derived", [url()])
    registry.create(admin, "88.118/node-level", [url()])
    registry.create_enterprise(admin, code="80")
    registry.create(admin, "88.118.80/neighbour", [url()])
    return sorted(f"88.118.8/{s}" for s in suffixes)


def test_list_returns_exactly_the_prefix_in_key_order_with_all_values(
    registry: Registry, account_a: Account, listed: list[str]
) -> None:
    page, token = registry.list(account_a, "88.118.8")

    assert [r.identifier for r in page] == listed
    assert token == ""
    assert all(len(r.values) == 2 for r in page)  # the owner sees restricted values


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 6])
def test_list_pages_cover_everything_once(
    registry: Registry, account_a: Account, listed: list[str], page_size: int
) -> None:
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page, token = registry.list(account_a, "88.118.8", page_size, token)
        pages += 1
        assert 0 < len(page) <= page_size
        seen.extend(r.identifier for r in page)
        if not token:
            break
        assert token == page[-1].identifier

    assert seen == listed
    assert pages == -(-len(listed) // page_size)  # no empty last page


def test_list_takes_the_prefix_in_any_case(
    registry: Registry, admin: Account, listed: list[str]
) -> None:
    page, _ = registry.list(admin, "88.118.8".upper())

    assert [r.identifier for r in page] == listed


def test_list_of_derived_prefix_by_its_owner(
    registry: Registry, account_a: Account, listed: list[str]
) -> None:
    page, _ = registry.list(account_a, "88.118.8.1")

    assert [r.identifier for r in page] == ["88.118.8.1/derived"]


@pytest.mark.parametrize(
    ("who", "prefix", "page_size", "page_token", "error", "message"),
    [
        ("b", "88.118.8", 0, "", PermissionDenied, "may not list prefix 88.118.8"),
        ("a", "88.118", 0, "", PermissionDenied, "may not list prefix 88.118"),
        ("anonymous", "88.118.8", 0, "", AuthenticationRequired, "needs a bearer token"),
        ("a", "88.118.8", 1001, "", InvalidRequest, "page_size must be between 1 and 1000"),
        ("a", "88.118.8", 2, "88.118.9/x", InvalidRequest, "does not belong to this prefix"),
        ("a", "88.118.8", 2, "88.118.80/x", InvalidRequest, "does not belong to this prefix"),
        ("a", "88", 0, "", InvalidIdentifier, "segments"),
    ],
)
def test_list_refuses_bad_requests(
    registry: Registry,
    account_a: Account,
    account_b: Account,
    listed: list[str],
    who: str,
    prefix: str,
    page_size: int,
    page_token: str,
    error: type[Exception],
    message: str,
) -> None:
    caller = {"a": account_a, "b": account_b, "anonymous": None}[who]

    with pytest.raises(error, match=message):
        registry.list(caller, prefix, page_size, page_token)


# Enterprises ----------------------------------------------------------------------


def test_enterprises_get_the_next_free_code_or_the_requested_one(
    registry: Registry, admin: Account
) -> None:
    first = registry.create_enterprise(admin)
    second = registry.create_enterprise(admin)
    requested = registry.create_enterprise(admin, code="3")
    upper = registry.create_enterprise(admin, code="AB-c")
    after = registry.create_enterprise(admin)

    assert [e.prefix for e in (first, second, requested, upper, after)] == [
        "88.118.1",
        "88.118.2",
        "88.118.3",
        "88.118.ab-c",
        "88.118.4",
    ]
    assert len({e.token for e in (first, second, requested, upper, after)}) == 5


def test_enterprise_creation_records_account_prefix_and_contact(
    registry: Registry, store: Store, admin: Account
) -> None:
    before = last_sequence(store)

    made = registry.create_enterprise(admin, code="8", name="Jiangxi Motors", contact="ops@jx")

    assert (made.prefix, made.account) == ("88.118.8", "88.118.8")
    account = accounts.authenticate(store, made.token)
    assert account.role == accounts.ENTERPRISE
    assert list(account.prefixes) == ["88.118.8"]
    assert account.contact == "ops@jx"
    info = registry.home("88.118.8")
    assert info is not None
    assert (info.prefix, info.owner, info.name, info.contact) == (
        "88.118.8",
        "88.118.8",
        "Jiangxi Motors",
        "ops@jx",
    )
    assert log(store, before) == [(Op.PREFIX_PUT, "88.118.8"), (Op.ACCOUNT_PUT, "88.118.8")]


def test_enterprise_under_a_parent_prefix(registry: Registry, admin: Account) -> None:
    registry.create_enterprise(admin, code="8")

    made = registry.create_enterprise(admin, parent="88.118.8")

    assert made.prefix == "88.118.8.1"


@pytest.mark.parametrize(
    ("code", "parent", "error", "message"),
    [
        ("8", "", PrefixAlreadyExists, "prefix 88.118.8 is already allocated"),
        ("a.b", "", InvalidIdentifier, "may contain only letters, digits"),
        ("a_b", "", InvalidIdentifier, "may contain only letters, digits"),
        ("x" * 33, "", InvalidIdentifier, "may contain only letters, digits"),
        # KELVIN SIGN: str.lower() makes it "k"; only ASCII letters fold, after validation.
        ("\u212a", "", InvalidIdentifier, "'\u212a' may contain only letters, digits"),
        ("x" * 5000, "", InvalidIdentifier, r"'x{40}'…\(5000 bytes\) may contain only"),
        ("", "88.119", NotResponsible, "88.119 is not under 88.118"),
    ],
)
def test_enterprise_creation_refuses_bad_codes(
    registry: Registry,
    store: Store,
    admin: Account,
    enterprise_a: Enterprise,
    code: str,
    parent: str,
    error: type[Exception],
    message: str,
) -> None:
    before = last_sequence(store)

    with pytest.raises(error, match=message):
        registry.create_enterprise(admin, code=code, parent=parent)

    assert last_sequence(store) == before


def test_duplicate_enterprise_code_leaves_the_first_owner_in_place(
    registry: Registry, store: Store, admin: Account, enterprise_a: Enterprise
) -> None:
    with pytest.raises(PrefixAlreadyExists):
        registry.create_enterprise(admin, code="8", contact="intruder")

    assert accounts.authenticate(store, enterprise_a.token).contact == "a@example.com"


@pytest.mark.parametrize(
    ("who", "error"),
    [("enterprise", PermissionDenied), ("anonymous", AuthenticationRequired)],
)
def test_only_the_administrator_creates_enterprises(
    registry: Registry, account_a: Account, who: str, error: type[Exception]
) -> None:
    caller = account_a if who == "enterprise" else None

    with pytest.raises(error):
        registry.create_enterprise(caller, code="20")

    assert home_of(registry, "88.118.20") == "88.118"  # no enterprise prefix was made


# Derived prefixes and delegation ----------------------------------------------------


def test_derived_prefix_is_hosted_on_first_write_for_the_owner(
    registry: Registry, store: Store, account_a: Account, account_b: Account
) -> None:
    before = last_sequence(store)

    registry.create(account_a, "88.118.8.1/x", [url()])
    registry.create(account_a, "88.118.8.1/y", [url()])

    assert log(store, before) == [
        (Op.PREFIX_PUT, "88.118.8.1"),
        (Op.CREATE, "88.118.8.1/x"),
        (Op.CREATE, "88.118.8.1/y"),
    ]
    info = registry.home("88.118.8.1")
    assert info is not None
    assert (info.prefix, info.owner) == ("88.118.8.1", "88.118.8")
    with pytest.raises(PermissionDenied, match=re.escape("prefix 88.118.8.1")):
        registry.create(account_b, "88.118.8.1/z", [url()])


def test_refused_write_does_not_host_a_derived_prefix(
    registry: Registry, store: Store, account_b: Account, enterprise_a: Enterprise
) -> None:
    before = last_sequence(store)

    with pytest.raises(PermissionDenied):
        registry.create(account_b, "88.118.8.5/x", [url()])
    result = registry.batch_register(account_b, batch(("88.118.8.6/x", [url()])))

    assert result.rejected == 1
    assert last_sequence(store) == before
    assert home_of(registry, "88.118.8.5") == "88.118.8"
    assert home_of(registry, "88.118.8.6") == "88.118.8"


def test_derived_prefix_in_a_batch_is_hosted_once(
    registry: Registry, store: Store, account_a: Account
) -> None:
    before = last_sequence(store)

    registry.batch_register(account_a, batch(("88.118.8.2/a", [url()]), ("88.118.8.2/b", [url()])))

    assert log(store, before) == [
        (Op.PREFIX_PUT, "88.118.8.2"),
        (Op.CREATE, "88.118.8.2/a"),
        (Op.CREATE, "88.118.8.2/b"),
    ]


SITE = handle_pb2.Site(grpc_address="10.8.0.1:8443", dns_address="10.8.0.1:53")


@pytest.mark.parametrize("identifier", ["88.118.8/JXDY2106023", "88.118.8/absent", "88.118.8.7/x"])
def test_delegated_prefix_refers_resolution_to_its_site(
    registry: Registry, account_a: Account, identifier: str
) -> None:
    registry.create(account_a, ID, [url()])

    info = registry.put_prefix(account_a, "88.118.8", [SITE])

    assert list(info.sites) == [SITE]
    with pytest.raises(Referred) as caught:
        registry.resolve(parse(identifier))
    referral = caught.value.referral
    assert isinstance(referral, Referral)
    assert (referral.code, referral.prefix, referral.sites) == (303, "88.118.8", (SITE,))
    assert referral.ttl_seconds == REFERRAL_TTL_SECONDS


def test_clearing_the_sites_serves_the_prefix_locally_again(
    registry: Registry, account_a: Account
) -> None:
    registry.create(account_a, ID, [url()])
    registry.put_prefix(account_a, "88.118.8", [SITE])

    registry.put_prefix(account_a, "88.118.8", [])

    assert resolved(registry, ID) == [(1, "URL", b"https://example.com/p")]


def test_put_prefix_creates_a_derived_prefix_with_its_sites(
    registry: Registry, account_a: Account
) -> None:
    info = registry.put_prefix(account_a, "88.118.8.3", [SITE])

    assert (info.prefix, info.owner, list(info.sites)) == ("88.118.8.3", "88.118.8", [SITE])
    with pytest.raises(Referred):
        registry.resolve(parse("88.118.8.3/x"))


def test_ensure_node_prefix_is_idempotent(registry: Registry, store: Store) -> None:
    before = last_sequence(store)

    registry.ensure_node_prefix()

    assert last_sequence(store) == before
    info = registry.home("88.118")
    assert info is not None
    assert info.owner == accounts.ADMIN_NAME


def test_unallocated_enterprise_codes_are_not_taken_by_writes(
    registry: Registry, admin: Account
) -> None:
    url = [HandleValue(index=1, type="URL", data=b"u")]
    with pytest.raises(PrefixNotFound, match=r"prefix 88\.118\.77 is not allocated"):
        registry.create(admin, "88.118.77/x", url)
    with pytest.raises(PrefixNotFound):
        registry.create(admin, "88.118.77.1/x", url)

    assert registry.create_enterprise(admin, code="77").prefix == "88.118.77"
    assert registry.create(admin, "88.118/node-level", url).operation == "created"
    assert registry.create(admin, "88.118.77.1/x", url).operation == "created"
