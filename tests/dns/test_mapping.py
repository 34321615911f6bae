"""The identifier <-> name mapping: the documented examples (docs/dns.md), edge cases and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidIdentifier
from registry.identifier import Identifier, parse
from resolver.dns import dns_name
from resolver.dns.mapping import NODE, NOTHING, lookup, nodes_of, relative_labels, wire_length

ZONE = "id.example."


@pytest.mark.parametrize(
    ("identifier", "name"),
    [
        ("88.118.8/abc-1", "abc-1.8.118.88.id.example."),
        ("88.118.8/JXDY2106023", "b32-99c48m9i64o3cc1i6c.8.118.88.id.example."),
        ("88.118.8/jxdy2106023", "jxdy2106023.8.118.88.id.example."),
        ("88.118.8/a", "a.8.118.88.id.example."),
        ("88.118.8/-a", f"b32-{'5lgg'}.8.118.88.id.example."),
        ("88.118.8/b32-x", "b32-c8pj4bbo.8.118.88.id.example."),
        ("88.118.8/xn--p1ai", "b32-f1n2qbbg65gmi.8.118.88.id.example."),
        ("88.ABC.8/x", "x.8.abc.88.id.example."),
    ],
)
def test_examples_map_to_the_documented_names(identifier: str, name: str) -> None:
    assert dns_name(identifier, ZONE) == name


@pytest.mark.parametrize("suffix", ["a.b", "a/b", "A", "a_b", "ab-", "é", " x", "a" * 64])
def test_suffixes_outside_the_plain_label_syntax_are_base32(suffix: str) -> None:
    name = dns_name(f"88.118.8/{suffix}", ZONE)
    assert name is not None and name.startswith("b32-")


def test_long_suffixes_are_cut_into_labels_of_63_from_the_left() -> None:
    labels = relative_labels(Identifier("88.118.8", "Z" * 100))
    chain = labels[:-3]
    assert chain[0].startswith("b32-")
    assert [len(label) for label in chain] == [63, 63, 38]


def test_names_over_255_octets_have_no_name() -> None:
    assert dns_name("88.118.8/" + "x" * 150, ZONE) is None
    assert dns_name("88.118.8/" + "x" * 60, ZONE) is not None


def test_zone_without_trailing_dot_and_in_capitals_is_accepted() -> None:
    assert dns_name("88.118.8/a", "ID.Example") == "a.8.118.88.id.example."


def test_invalid_identifiers_raise() -> None:
    with pytest.raises(InvalidIdentifier):
        dns_name("no-slash", ZONE)


HOSTED = {"88.118", "88.118.8", "88.118.8.1"}
NODES = nodes_of(HOSTED)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([], NODE),
        (["88"], NODE),
        (["118", "88"], NODE),
        (["8", "118", "88"], NODE),
        (["1", "8", "118", "88"], NODE),  # the derived prefix wins over 88.118.8/1
        (["x", "1", "8", "118", "88"], Identifier("88.118.8.1", "x")),
        (["x", "8", "118", "88"], Identifier("88.118.8", "x")),
        (["x", "9", "118", "88"], NOTHING),
        (["x", "77"], NOTHING),
        (["xn--p1ai", "8", "118", "88"], NOTHING),
        (["b32-zz", "8", "118", "88"], NOTHING),  # not base32hex
        (["b32-5lgh", "8", "118", "88"], NOTHING),  # non-canonical trailing bits
        (["b32-5lgg", "8", "118", "88"], Identifier("88.118.8", "-a")),
        (["b32-c4", "8", "118", "88"], NOTHING),  # decodes to "a": its name is the plain label
        (["a", "b", "8", "118", "88"], NOTHING),
        (["v" * 63, "v", "8", "118", "88"], NOTHING),  # a chain tail: the name index decides
    ],
)
def test_lookup_decides_by_the_longest_hosted_prefix(labels: list[str], expected: object) -> None:
    found = lookup(labels, HOSTED, NODES)
    if isinstance(expected, Identifier):
        assert found.identifier == expected
    else:
        assert found == expected


segments = st.from_regex(r"[A-Za-z0-9-]{1,6}", fullmatch=True)
prefixes = st.lists(segments, min_size=2, max_size=8).map(".".join)
suffixes = st.one_of(
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x7f"),
        min_size=1,
        max_size=120,
    ).filter(lambda s: not any(ord(c) < 32 for c in s)),
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,8}", fullmatch=True),
    st.from_regex(r"(b32-|xn--)[a-z0-9]{0,8}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9]{1,70}", fullmatch=True),
)


@settings(max_examples=400, deadline=None)
@given(prefixes, suffixes)
def test_every_name_maps_back_to_its_identifier(prefix: str, suffix: str) -> None:
    try:
        identifier = parse(f"{prefix}/{suffix}")
    except InvalidIdentifier:
        return
    name = dns_name(str(identifier), ZONE)
    labels = relative_labels(identifier)
    if wire_length(labels, ZONE) > 255:
        assert name is None
        return
    assert name is not None and len(name) <= 254
    assert all(1 <= len(label) <= 63 for label in labels)
    assert name == name.lower()
    found = lookup(labels, {identifier.prefix}, nodes_of({identifier.prefix}))
    assert found.identifier == identifier


@settings(max_examples=200, deadline=None)
@given(prefixes, st.from_regex(r"[A-Za-z]{1,20}", fullmatch=True))
def test_suffixes_differing_only_in_case_get_different_names(prefix: str, suffix: str) -> None:
    upper, lower = suffix.upper(), suffix.lower()
    if upper == lower:
        return
    assert dns_name(f"{prefix}/{upper}", ZONE) != dns_name(f"{prefix}/{lower}", ZONE)
