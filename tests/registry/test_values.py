"""Handle values: validation and defaults, content comparison, what a caller may see."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto import handle_pb2
from registry import packing, values
from registry.errors import InvalidValue, TooLarge

HandleValue = handle_pb2.HandleValue
NOW = 1_700_000_000


def value(
    index: int = 1, type: str = "URL", data: bytes = b"https://example.com", **more: Any
) -> Any:
    return HandleValue(index=index, type=type, data=data, **more)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([value(index=0)], "value 1 (index 0): index must be between 1 and 2147483647"),
        ([value(index=2**31)], "index must be between 1 and 2147483647"),
        ([value(index=1), value(index=1)], "value 2: index 1 appears twice"),
        ([value(index=1), value(index=2, type="")], "value 2 (index 2): type is empty"),
        ([value(type="product name")], "type 'product name' contains a space or control"),
        ([value(type="URL\t")], "contains a space or control character"),
        ([value(type="URL\x00")], "contains a space or control character"),
        ([value(type="URL\x7f")], "contains a space or control character"),
        ([value(type="a" * 129)], "type is longer than 128 bytes"),
        ([value(type="类" * 43)], "type is longer than 128 bytes"),
        ([value(data=b"x" * 65536)], "data is longer than 65535 bytes"),
        (
            [value(index=1), value(index=7, ttl=2**31)],
            "value 2 (index 7): ttl 2147483648 is more than 2147483647 seconds",
        ),
        ([value(ttl=2**32 - 1)], "value 1 (index 1): ttl 4294967295 is more than 2147483647"),
        (
            [value(index=3, type="HS_ADMIN")],
            "value 1 (index 3): type HS_ADMIN is reserved for values the node manages",
        ),
        ([value(type="hs_site")], "type hs_site is reserved"),
        ([value(type="Hs_PubKey")], "type Hs_PubKey is reserved"),
        ([value(type="HS_SECKEY")], "type HS_SECKEY is reserved"),
        ([value(type="HS_VLIST")], "type HS_VLIST is reserved"),
        ([value(type="HS_SERV")], "type HS_SERV is reserved"),
        ([value(type="HS_SITE.6")], "type HS_SITE.6 is reserved"),
    ],
    ids=[
        "index-0",
        "index-too-big",
        "duplicate-index",
        "empty-type",
        "type-with-space",
        "type-with-tab",
        "type-with-nul",
        "type-with-del",
        "type-too-long",
        "type-too-long-in-utf8",
        "data-too-large",
        "ttl-past-rfc-2181",
        "ttl-uint32-max",
        "reserved-hs-admin",
        "reserved-lower-case",
        "reserved-mixed-case",
        "reserved-hs-seckey",
        "reserved-hs-vlist",
        "reserved-hs-serv",
        "reserved-subtype",
    ],
)
def test_normalise_rejects_bad_value_naming_it(given: list[Any], message: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        values.normalise(given, NOW)

    assert message in str(caught.value)


@pytest.mark.parametrize(
    "given",
    [
        [value(index=i) for i in range(1, values.MAX_VALUES_PER_RECORD + 2)],
        [value(index=i, data=b"x" * values.MAX_DATA_BYTES) for i in range(1, 18)],
    ],
    ids=["too-many-values", "record-too-many-bytes"],
)
def test_normalise_rejects_record_past_the_size_limits(given: list[Any]) -> None:
    with pytest.raises(TooLarge):
        values.normalise(given, NOW)


def test_normalise_accepts_the_limits_themselves() -> None:
    at_limits = [
        value(index=values.MAX_INDEX, type="t" * values.MAX_TYPE_BYTES),
        value(index=1, data=b"x" * values.MAX_DATA_BYTES),
        value(index=2, ttl=2**31 - 1),
    ]

    assert [v.index for v in values.normalise(at_limits, NOW)] == [1, 2, values.MAX_INDEX]


@pytest.mark.parametrize("type_name", ["HS_ADMINS", "HS_SITES.6", "HS_CUSTOM", "URL.HS_SITE", "hs"])
def test_types_that_only_look_reserved_are_ordinary(type_name: str) -> None:
    assert values.normalise([value(type=type_name)], NOW)[0].type == type_name


def test_the_node_may_write_reserved_types_and_stored_records_need_not_follow_new_rules() -> None:
    managed = [value(index=1, type="HS_PUBKEY"), value(index=2, type="HS_SITE", ttl=2**32 - 1)]

    with pytest.raises(InvalidValue):
        values.normalise(managed, NOW)
    assert [v.type for v in values.normalise(managed[:1], NOW, managed=True)] == ["HS_PUBKEY"]
    values.check_stored(managed)  # a record stored before the TTL cap is not a problem
    with pytest.raises(InvalidValue, match="index 1 appears twice"):
        values.check_stored([value(index=1), value(index=1)])


def test_normalise_stamps_sorts_and_fills_defaults_on_copies() -> None:
    given = [
        value(index=3, type="product.name", data="发动机".encode()),
        value(index=1, public_read=True),
        value(index=2, type="EMAIL", ttl=0, public_read=False, timestamp=5),
    ]

    result = values.normalise(given, NOW)

    assert [v.index for v in result] == [1, 2, 3]
    assert [v.timestamp for v in result] == [NOW, NOW, NOW]
    assert result[0].ttl == values.DEFAULT_TTL_SECONDS == 86400
    assert not result[0].HasField("public_read")  # true is the default, stored absent
    assert result[1].ttl == 0  # an explicit 0 is kept, not replaced by the default
    assert result[1].HasField("public_read")
    assert result[1].public_read is False
    assert result[2].data == "发动机".encode()
    assert given[1].HasField("public_read")
    assert given[2].timestamp == 5
    assert not given[0].HasField("ttl")


def test_normalise_of_nothing_is_empty() -> None:
    assert values.normalise([], NOW) == []


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (value(timestamp=1), value(timestamp=2), True),
        (value(), value(public_read=True), True),
        (value(ttl=86400), value(ttl=86400, timestamp=9), True),
        (value(), value(public_read=False), False),
        (value(ttl=10), value(ttl=20), False),
        (value(data=b"a"), value(data=b"b"), False),
        (value(type="URL"), value(type="url"), False),
        (value(index=1), value(index=2), False),
    ],
)
def test_same_content_ignores_only_timestamps(left: Any, right: Any, same: bool) -> None:
    assert values.same_content([left], [right]) is same


def test_same_content_compares_length_and_order() -> None:
    one, two = value(index=1), value(index=2)

    assert values.same_content([one, two], [one, two])
    assert not values.same_content([one, two], [one])
    assert not values.same_content([one, two], [two, one])
    assert values.same_content([], [])


RECORD = [
    value(index=1, type="URL", data=b"https://a"),
    value(index=2, type="EMAIL", data=b"a@b", public_read=False),
    value(index=3, type="url", data=b"https://b"),
    value(index=4, type="batch", data=b"B1", public_read=True),
]


@pytest.mark.parametrize(
    ("types", "indexes", "include_restricted", "expected"),
    [
        ((), (), False, [1, 3, 4]),
        ((), (), True, [1, 2, 3, 4]),
        (("URL",), (), False, [1, 3]),
        (("Url", "BATCH"), (), False, [1, 3, 4]),
        (("EMAIL",), (), False, []),
        (("email",), (), True, [2]),
        ((), (2, 3), False, [3]),
        ((), (2, 3), True, [2, 3]),
        (("URL",), (3, 4), False, [3]),
        (("nothing",), (), True, []),
    ],
)
def test_select_filters_by_type_and_index_and_hides_restricted(
    types: tuple[str, ...], indexes: tuple[int, ...], include_restricted: bool, expected: list[int]
) -> None:
    selected = values.select(RECORD, types, indexes, include_restricted)

    assert [v.index for v in selected] == expected


def test_is_public_when_public_read_absent_or_true() -> None:
    assert values.is_public(value())
    assert values.is_public(value(public_read=True))
    assert not values.is_public(value(public_read=False))


# Properties -------------------------------------------------------------------------

_types = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=1, max_size=20
).filter(lambda name: not values.is_reserved(name))
_value_lists = st.lists(
    st.builds(
        lambda index, type, data, ttl, public: HandleValue(
            index=index, type=type, data=data, ttl=ttl, public_read=public
        ),
        st.integers(1, values.MAX_INDEX),
        _types,
        st.binary(max_size=64),
        st.none() | st.integers(0, values.MAX_TTL_SECONDS),
        st.none() | st.booleans(),
    ),
    max_size=8,
    unique_by=lambda v: v.index,
)


@settings(max_examples=200)
@given(_value_lists, st.integers(0, 2**40), st.integers(0, 2**40))
def test_normalise_is_idempotent_and_content_does_not_depend_on_the_time(
    given_values: list[Any], first: int, second: int
) -> None:
    once = values.normalise(given_values, first)

    assert values.normalise(once, first) == once
    assert values.same_content(once, values.normalise(given_values, second))
    assert [v.index for v in once] == sorted(v.index for v in given_values)
    assert all(v.HasField("ttl") for v in once)
    assert [values.is_public(v) for v in once] == [
        values.is_public(v) for v in sorted(given_values, key=lambda v: v.index)
    ]


# A batch's fast path agrees with normalise, value for value and error for error --------

_types = st.sampled_from(["URL", "EMAIL", "batch", "HS_ADMIN", "hs_site.1", "a b", "", "t" * 129])
_values = st.builds(
    lambda index, type_name, data, ttl, public, stamp: value(
        index=index, type=type_name, data=data, timestamp=stamp,
        **({} if ttl is None else {"ttl": ttl}), **({} if public is None else {"public_read": public}),
    ),
    st.sampled_from([0, 1, 2, 3, 7, values.MAX_INDEX, values.MAX_INDEX + 1]),
    _types,
    st.sampled_from([b"", b"x", b"x" * values.MAX_DATA_BYTES, b"x" * (values.MAX_DATA_BYTES + 1)]),
    st.sampled_from([None, 0, 60, values.MAX_TTL_SECONDS, values.MAX_TTL_SECONDS + 1]),
    st.sampled_from([None, True, False]),
    st.sampled_from([0, 5]),
)  # fmt: skip


@settings(max_examples=400)
@given(st.lists(_values, max_size=6), st.booleans())
def test_stamp_record_is_normalise_as_a_record(given: list[Any], types_seen: bool) -> None:
    if types_seen:  # the fast path takes only types normalise accepted before
        for type_name in ("URL", "EMAIL", "batch"):
            values.normalise([value(type=type_name)], NOW)
            values.stamp_record(handle_pb2.Record(values=[value(type=type_name)]), NOW)
    record = handle_pb2.Record(identifier="88.118/x", values=given)
    try:
        expected = handle_pb2.Record(values=values.normalise(given, NOW))
    except (InvalidValue, TooLarge) as error:
        with pytest.raises(type(error)) as caught:
            values.stamp_record(record, NOW)
        assert str(caught.value) == str(error)
        return
    stamped = packing.without_identifier(values.stamp_record(record, NOW).SerializeToString())
    assert stamped == expected.SerializeToString()
    # stamped in place, and stamping it again gives the same: a caller may send it again
    again = packing.without_identifier(values.stamp_record(record, NOW).SerializeToString())
    assert again == stamped


def test_stamp_record_past_the_size_limits_is_refused_as_normalise_refuses_it() -> None:
    many = handle_pb2.Record(
        values=[value(index=i) for i in range(1, values.MAX_VALUES_PER_RECORD + 2)]
    )
    values.stamp_record(handle_pb2.Record(values=[value()]), NOW)  # URL accepted before

    with pytest.raises(TooLarge, match="1001 values, more than 1000"):
        values.stamp_record(many, NOW)
