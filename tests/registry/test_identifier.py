"""Identifier syntax (docs/identifiers.md): a table of good and bad identifiers and Hypothesis properties."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidIdentifier
from registry.identifier import (
    Identifier,
    cache_key,
    excerpt,
    fold_case,
    is_under,
    parent_prefixes,
    parse,
    parse_prefix,
)

SEGMENT_32 = "a" * 32
PREFIX_64 = "A" * 32 + "." + "b" * 31


@pytest.mark.parametrize(
    ("text", "prefix", "suffix"),
    [
        ("88.118.8/JXDY2106023", "88.118.8", "JXDY2106023"),
        ("88.118.8/abc-1", "88.118.8", "abc-1"),
        ("88.118/x", "88.118", "x"),
        ("1.2.3.4.5.6.7.8/x", "1.2.3.4.5.6.7.8", "x"),
        (f"88.{SEGMENT_32}/x", f"88.{SEGMENT_32}", "x"),
        ("88.Ab-C.8/x", "88.ab-c.8", "x"),
        (f"{PREFIX_64}/x", PREFIX_64.lower(), "x"),
        ("88.118.8/MiXeD", "88.118.8", "MiXeD"),
        ("88.118.8/a/b.c/../d", "88.118.8", "a/b.c/../d"),
        ("88.118.8//", "88.118.8", "/"),
        ("88.118.8/.", "88.118.8", "."),
        ("88.118.8/产品 批次-001", "88.118.8", "产品 批次-001"),
        ("88.118.8/🔩", "88.118.8", "🔩"),
        ("88.118.8/ leading and trailing ", "88.118.8", " leading and trailing "),
        ("88.118/" + "x" * 248, "88.118", "x" * 248),
        ("88.118/" + "é" * 124, "88.118", "é" * 124),
    ],
    ids=lambda v: v if len(v) < 30 else v[:27] + "...",
)
def test_good_identifier_parses_to_canonical_prefix_and_suffix_as_given(
    text: str, prefix: str, suffix: str
) -> None:
    parsed = parse(text)

    assert parsed == Identifier(prefix, suffix)
    assert str(parsed) == f"{prefix}/{suffix}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("88.118.8", "has no '/' between prefix and suffix"),
        ("", "has no '/'"),
        ("/abc", "prefix is empty"),
        ("88/abc", "has 1 segments; 2 to 8 are allowed"),
        ("1.2.3.4.5.6.7.8.9/x", "has 9 segments; 2 to 8 are allowed"),
        ("88..8/x", "empty segment at position 2"),
        ("88.118./x", "empty segment at position 3"),
        (".88.118/x", "empty segment at position 1"),
        (f"88.{SEGMENT_32}a/x", "is longer than 32 characters"),
        ("88.1_8/x", "may contain only letters, digits and '-'"),
        ("88.1 8/x", "may contain only letters, digits and '-'"),
        ("88.118\n/x", "may contain only letters, digits and '-'"),
        ("88.118é/x", "contains a non-ASCII character"),
        ("88.１１８/x", "contains a non-ASCII character"),
        (f"{PREFIX_64}b/x", "prefix is 65 bytes, longer than 64"),
        ("88.118/", "suffix is empty"),
        ("88.118/abc\x00", "suffix contains a control character (U+0000) at position 4"),
        ("88.118/\tx", "suffix contains a control character (U+0009) at position 1"),
        ("88.118/ab\x1fc", "suffix contains a control character (U+001F) at position 3"),
        ("88.118/a\x7f", "suffix contains a control character (U+007F) at position 2"),
        ("88.118/line\nbreak", "suffix contains a control character (U+000A) at position 5"),
        ("88.118/abc\ud800", "not valid UTF-8 (lone surrogate at position 4)"),
        ("88.118/\udfffz", "not valid UTF-8 (lone surrogate at position 1)"),
        ("88.118/" + "x" * 249, "identifier is 256 bytes of UTF-8, longer than 255"),
        ("88.118/" + "é" * 125, "identifier is 257 bytes of UTF-8, longer than 255"),
    ],
    ids=lambda v: ascii(v) if len(v) < 30 else ascii(v[:27]) + "...",
)
def test_bad_identifier_is_rejected_naming_the_rule(text: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse(text)

    assert message in str(caught.value)
    assert caught.value.handle_code == 102


def test_prefix_compares_case_insensitively_and_suffix_case_sensitively() -> None:
    assert parse("88.ABC.8/x") == parse("88.abc.8/x")
    assert parse("88.abc.8/X") != parse("88.abc.8/x")
    assert parse_prefix("88.ABC") == "88.abc"


@pytest.mark.parametrize(
    ("prefix", "ancestor", "expected"),
    [
        ("88.118.8", "88.118", True),
        ("88.118", "88.118", True),
        ("88.118.8.1", "88.118.8", True),
        ("88.1180", "88.118", False),
        ("88.11", "88.118", False),
        ("88.118", "88.118.8", False),
    ],
)
def test_is_under_follows_segments_not_characters(
    prefix: str, ancestor: str, expected: bool
) -> None:
    assert is_under(prefix, ancestor) is expected


def test_parent_prefixes_lists_the_prefix_and_ancestors_of_two_segments_or_more() -> None:
    assert parent_prefixes("88.118.8.1") == ["88.118.8.1", "88.118.8", "88.118"]
    assert parent_prefixes("88.118") == ["88.118"]


# Properties -------------------------------------------------------------------

_SEGMENT_RE = re.compile(r"[A-Za-z0-9-]{1,32}")


def accepted_by_design(text: str) -> bool:
    """The syntax of docs/identifiers.md written out independently of registry.identifier, as the oracle."""
    prefix, slash, suffix = text.partition("/")
    if not slash:
        return False
    segments = prefix.split(".")
    if not 2 <= len(segments) <= 8:
        return False
    if not all(_SEGMENT_RE.fullmatch(segment) for segment in segments):
        return False
    if len(prefix.encode("ascii")) > 64:
        return False
    if not suffix or any(ord(c) <= 0x1F or ord(c) == 0x7F for c in suffix):
        return False
    try:
        return len(text.encode("utf-8")) <= 255
    except UnicodeEncodeError:
        return False


_segments = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=32)
_prefixes = st.lists(_segments, min_size=2, max_size=8).map(".".join).filter(lambda p: len(p) <= 64)
_suffix_chars = st.characters(
    codec="utf-8", exclude_characters=[chr(c) for c in range(0x20)] + ["\x7f"]
)
_suffixes = st.text(alphabet=_suffix_chars, min_size=1, max_size=80)
_valid = st.builds(lambda p, s: f"{p.lower()}/{s}", _prefixes, _suffixes).filter(
    lambda t: len(t.encode()) <= 255
)
_mixed_case = st.builds(lambda p, s: f"{p}/{s}", _prefixes, _suffixes).filter(
    lambda t: len(t.encode()) <= 255
)
# Text that is near the grammar finds more of the boundaries than arbitrary text alone.
_near_valid = st.builds(
    lambda p, sep, s: p + sep + s,
    st.text(alphabet=string.ascii_letters + string.digits + "-._/é\n ", max_size=70),
    st.sampled_from(["/", "", "//", "./"]),
    st.text(max_size=260),
)
_any_text = st.one_of(st.text(max_size=300), _near_valid, _valid)


@settings(max_examples=300)
@given(_valid)
def test_generated_valid_identifier_parses_back_to_itself(text: str) -> None:
    assert str(parse(text)) == text


@settings(max_examples=300)
@given(_mixed_case)
def test_parse_of_formatted_is_identity(text: str) -> None:
    parsed = parse(text)
    assert parse(str(parsed)) == parsed
    assert parsed.prefix == parsed.prefix.lower()


@settings(max_examples=500)
@given(_any_text)
def test_parser_raises_only_invalid_identifier_and_agrees_with_design(text: str) -> None:
    try:
        parsed = parse(text)
    except InvalidIdentifier as error:
        assert str(error)
        assert not accepted_by_design(text)
        return
    assert accepted_by_design(text)
    assert parse(str(parsed)) == parsed
    assert parsed.suffix == text.partition("/")[2]


# Hostile input: size bounds, quoted excerpts, case folding --------------------


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,  # no '/' at all
        "88.118/" + "x" * 1_000_000,
        "\x00" * 300_000,
        "88." + "é" * 200 + "/x",
        "88." + "a" * 50 + "_" + "/x",
    ],
    ids=["1MB-no-slash", "1MB-suffix", "nul-bytes", "long-non-ascii-prefix", "bad-segment"],
)
def test_an_error_never_quotes_more_than_a_short_excerpt(text: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse(text)

    assert len(str(caught.value)) < 200
    assert "\x00" not in str(caught.value)


def test_an_overlong_input_is_refused_before_it_is_scanned_for_a_slash() -> None:
    with pytest.raises(InvalidIdentifier, match="1000000 bytes of UTF-8, longer than 255"):
        parse("x" * 1_000_000)
    assert cache_key("88.118/" + "x" * 249) is None


def test_excerpt_escapes_and_cuts_with_the_size() -> None:
    assert excerpt("abc") == "'abc'"
    assert excerpt("\x00\n") == "'\\x00\\n'"
    assert excerpt("é" * 100) == repr("é" * 40) + "…(200 bytes)"


@pytest.mark.parametrize(
    "letter",
    ["\u212a", "\u0130", "\u017f", "\u212b"],  # KELVIN, I WITH DOT, LONG S, ANGSTROM
)
def test_non_ascii_letters_are_never_folded_onto_ascii_ones(letter: str) -> None:
    text = f"88.118.{letter}/x"
    with pytest.raises(InvalidIdentifier, match="non-ASCII"):
        parse(text)
    assert cache_key(text) is None
    assert fold_case(f"88.{letter}K") == f"88.{letter}k"


@settings(max_examples=500)
@given(_any_text)
def test_cache_key_is_the_canonical_form_of_whatever_parses(text: str) -> None:
    key = cache_key(text)
    try:
        parsed = parse(text)
    except InvalidIdentifier:
        if key is not None:  # whatever else shares the key fails too
            with pytest.raises(InvalidIdentifier):
                parse(key)
        return
    assert key == str(parsed)


@settings(max_examples=300)
@given(st.lists(_any_text, max_size=8))
def test_parse_remembering_prefixes_agrees_with_parse(texts: list[str]) -> None:
    remembered: dict[str, str] = {}
    for text in texts * 2:  # the second time round, prefixes come from the memo
        try:
            expected = parse(text)
        except InvalidIdentifier as error:
            with pytest.raises(InvalidIdentifier, match=re.escape(str(error))):
                parse(text, remembered)
            continue
        assert parse(text, remembered) == expected
    assert all(parse_prefix(written) == canonical for written, canonical in remembered.items())
