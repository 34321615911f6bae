"""Identifier syntax (docs/identifiers.md): parsing, validation and the canonical form."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from registry.errors import InvalidIdentifier

MAX_IDENTIFIER_BYTES = 255
MAX_PREFIX_BYTES = 64
MIN_PREFIX_SEGMENTS = 2
MAX_PREFIX_SEGMENTS = 8
MAX_SEGMENT_CHARS = 32
EXCERPT_CHARS = 40  # of an input quoted in an error message

_SEGMENT = re.compile(r"[A-Za-z0-9-]{1,32}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# ASCII letters only: str.lower() also maps some non-ASCII letters onto ASCII ones
# (U+212A KELVIN SIGN -> "k"), which would let two different inputs share a key.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True, slots=True)
class Identifier:
    """A parsed identifier: canonical (lowercase) prefix and the suffix as given."""

    prefix: str
    suffix: str

    def __str__(self) -> str:
        return f"{self.prefix}/{self.suffix}"


def parse(text: str, prefixes: dict[str, str] | None = None) -> Identifier:
    """Parse `prefix/suffix` into its canonical form.

    `prefixes` remembers prefixes as written -> canonical across calls (a batch repeats
    a few). Raises InvalidIdentifier naming the rule that failed. An input longer than
    the limit is refused before anything else is looked at.
    """
    return Identifier(*_split(text, prefixes))


def parse_key(text: str, prefixes: dict[str, str]) -> tuple[str, str]:
    """The canonical prefix and `str(parse(text, prefixes))`, without an Identifier (a
    frozen dataclass takes a third of a microsecond to build, and a batch parses
    thousands). Raises as `parse` does."""
    prefix, suffix = _split(text, prefixes)
    return prefix, f"{prefix}/{suffix}"


def _split(text: str, prefixes: dict[str, str] | None) -> tuple[str, str]:
    """The canonical prefix and the suffix of `text`, checked as `parse` says."""
    if len(text) > MAX_IDENTIFIER_BYTES:  # more characters than bytes allowed: too long
        raise InvalidIdentifier(
            f"identifier is {utf8_length(text)} bytes of UTF-8, longer than {MAX_IDENTIFIER_BYTES}"
        )
    slash = text.find("/")
    if slash < 0:
        raise InvalidIdentifier(f"identifier {excerpt(text)} has no '/' between prefix and suffix")
    written = text[:slash]
    prefix = prefixes.get(written) if prefixes is not None else None
    if prefix is None:
        prefix = parse_prefix(written)
        if prefixes is not None:
            prefixes[written] = prefix
    suffix = text[slash + 1 :]
    check_suffix(suffix)
    size = len(prefix) + 1 + utf8_length(suffix)
    if size > MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifier(
            f"identifier is {size} bytes of UTF-8, longer than {MAX_IDENTIFIER_BYTES}"
        )
    return prefix, suffix


def parse_prefix(text: str) -> str:
    """Validate a prefix and return its canonical form (ASCII letters lower-cased).

    Raises InvalidIdentifier naming the rule that failed.
    """
    if not text:
        raise InvalidIdentifier("prefix is empty")
    if len(text) > MAX_PREFIX_BYTES:
        raise InvalidIdentifier(
            f"prefix is {utf8_length(text)} bytes, longer than {MAX_PREFIX_BYTES}"
        )
    if not text.isascii():
        raise InvalidIdentifier(f"prefix {excerpt(text)} contains a non-ASCII character")
    segments = text.split(".")
    if not MIN_PREFIX_SEGMENTS <= len(segments) <= MAX_PREFIX_SEGMENTS:
        raise InvalidIdentifier(
            f"prefix {excerpt(text)} has {len(segments)} segments; "
            f"{MIN_PREFIX_SEGMENTS} to {MAX_PREFIX_SEGMENTS} are allowed"
        )
    for position, segment in enumerate(segments, start=1):
        if _SEGMENT.match(segment):
            continue
        if not segment:
            raise InvalidIdentifier(
                f"prefix {excerpt(text)} has an empty segment at position {position}"
            )
        if len(segment) > MAX_SEGMENT_CHARS:
            raise InvalidIdentifier(
                f"prefix segment {excerpt(segment)} is longer than {MAX_SEGMENT_CHARS} characters"
            )
        raise InvalidIdentifier(
            f"prefix segment {excerpt(segment)} may contain only letters, digits and '-'"
        )
    return fold_case(text)


def fold_case(prefix: str) -> str:
    """`prefix` with ASCII letters lower-cased and every other character left as it is."""
    return prefix.translate(_ASCII_LOWER)


def cache_key(text: str) -> str | None:
    """The canonical form `str(parse(text))` would have, without validating: a cache key.

    None when `text` can never be an identifier (longer than the limit, no '/', a
    non-ASCII prefix), so it is refused before any cache is consulted. Only the
    ASCII letters of the prefix are folded, which never changes whether an input
    is valid: two inputs with one key parse to the same identifier or both fail,
    so a cached failure can never answer for a valid identifier.
    """
    if len(text) > MAX_IDENTIFIER_BYTES:
        return None
    slash = text.find("/")
    if slash <= 0:
        return None
    prefix = text[:slash]
    if not prefix.isascii():
        return None
    # On ASCII text, str.lower() is exactly ASCII folding, and the fastest way to it.
    return prefix.lower() + text[slash:]


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` quoted for an error message: escaped, at most `limit` characters of it,
    and its size when it was cut (a client must never get its own input back whole)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}…({utf8_length(text)} bytes)"


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8 (a lone surrogate counted as UTF-8 would encode it)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def check_suffix(suffix: str) -> None:
    """Raise InvalidIdentifier unless `suffix` is a valid suffix."""
    if not suffix:
        raise InvalidIdentifier("suffix is empty")
    bad = _CONTROL.search(suffix)
    if bad:
        raise InvalidIdentifier(
            f"suffix contains a control character (U+{ord(bad.group()):04X}) "
            f"at position {bad.start() + 1}"
        )
    if suffix.isascii():
        return
    try:
        suffix.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidIdentifier(
            f"suffix is not valid UTF-8 (lone surrogate at position {error.start + 1})"
        ) from None


def is_under(prefix: str, ancestor: str) -> bool:
    """True when canonical `prefix` equals `ancestor` or is derived from it."""
    return prefix == ancestor or prefix.startswith(ancestor + ".")


def parent_prefixes(prefix: str) -> list[str]:
    """`prefix` and its ancestors with at least two segments, longest first."""
    segments = prefix.split(".")
    return [".".join(segments[:n]) for n in range(len(segments), MIN_PREFIX_SEGMENTS - 1, -1)]
