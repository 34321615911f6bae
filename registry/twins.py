"""Prefixes that differ only by leading zeros (88.777.01, 88.777.1): one may exist, never both.

People, forms and other systems read a code as a number, so such prefixes would be
taken for one another; the second one is refused when it would be created.
"""

from __future__ import annotations

from registry.errors import PrefixAlreadyExists
from registry.identifier import MAX_SEGMENT_CHARS
from registry.writebatch import WriteBatch


def find(batch: WriteBatch, prefix: str, new_from: int) -> str | None:
    """A hosted prefix that differs from `prefix` only by leading zeros, if any.

    `new_from` is how many leading segments of `prefix` are already hosted (its home):
    only the segments after them are new, so only those are compared. A twin counts
    whether it is hosted itself or only through prefixes under it.
    """
    segments = prefix.split(".")
    for level in range(max(new_from, 1), len(segments)):
        head = ".".join(segments[:level])
        for code in variants(segments[level]):
            candidate = f"{head}.{code}"
            if batch.get_prefix(candidate) is not None or batch.has_prefix_under(candidate):
                return candidate
    return None


def refuse(batch: WriteBatch, prefix: str, new_from: int) -> None:
    """Raise PrefixAlreadyExists when `prefix` has a twin (`find`)."""
    twin = find(batch, prefix, new_from)
    if twin is not None:
        raise PrefixAlreadyExists(
            f"prefix {prefix} differs from the allocated prefix {twin} only by leading zeros"
        )


def variants(code: str) -> list[str]:
    """The other codes `code` equals once leading zeros are dropped ("1": "01", "001", …)."""
    bare = code.lstrip("0") or "0"
    forms = (
        "0" * (length - len(bare)) + bare for length in range(len(bare), MAX_SEGMENT_CHARS + 1)
    )
    return [form for form in forms if form != code]
