"""Identifier syntax (docs/identifiers.md): parsing, validation and the canonical form."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidIdentifier

MAX_IDENTIFIER_BYTES = 255
MAX_PREFIX_BYTES = 64
MIN_PREFIX_SEGMENTS = 2
MAX_PREFIX_SEGMENTS = 8
MAX_SEGMENT_CHARS = 32

_SEGMENT = re.compile(r"[A-Za-z0-9-]{1,32}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Identifier:
    """A parsed identifier: canonical (lowercase) prefix and the suffix as given."""

    prefix: str
    suffix: str

    def __str__(self) -> str:
        return f"{self.prefix}/{self.suffix}"


def parse(text: str) -> Identifier:
    """Parse `prefix/suffix` into its canonical form.

    Raises InvalidIdentifier naming the rule that failed.
    """
    slash = text.find("/")
    if slash < 0:
        raise InvalidIdentifier(f"identifier {text!r} has no '/' between prefix and suffix")
    prefix = parse_prefix(text[:slash])
    suffix = text[slash + 1 :]
    check_suffix(suffix)
    size = len(prefix) + 1 + _utf8_length(suffix)
    if size > MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifier(
            f"identifier is {size} bytes of UTF-8, longer than {MAX_IDENTIFIER_BYTES}"
        )
    return Identifier(prefix, suffix)


def parse_prefix(text: str) -> str:
    """Validate a prefix and return its canonical lowercase form.

    Raises InvalidIdentifier naming the rule that failed.
    """
    if not text:
        raise InvalidIdentifier("prefix is empty")
    if not text.isascii():
        raise InvalidIdentifier(f"prefix {text!r} contains a non-ASCII character")
    if len(text) > MAX_PREFIX_BYTES:
        raise InvalidIdentifier(f"prefix is {len(text)} bytes, longer than {MAX_PREFIX_BYTES}")
    segments = text.split(".")
    if not MIN_PREFIX_SEGMENTS <= len(segments) <= MAX_PREFIX_SEGMENTS:
        raise InvalidIdentifier(
            f"prefix {text!r} has {len(segments)} segments; "
            f"{MIN_PREFIX_SEGMENTS} to {MAX_PREFIX_SEGMENTS} are allowed"
        )
    for position, segment in enumerate(segments, start=1):
        if _SEGMENT.match(segment):
            continue
        if not segment:
            raise InvalidIdentifier(f"prefix {text!r} has an empty segment at position {position}")
        if len(segment) > MAX_SEGMENT_CHARS:
            raise InvalidIdentifier(
                f"prefix segment {segment!r} is longer than {MAX_SEGMENT_CHARS} characters"
            )
        raise InvalidIdentifier(
            f"prefix segment {segment!r} may contain only letters, digits and '-'"
        )
    return text.lower()


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


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8")) if not text.isascii() else len(text)
