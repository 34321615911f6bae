"""The identifier <-> DNS name mapping of docs/dns.md, pure and without I/O."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass

from registry.errors import InvalidIdentifier
from registry.identifier import MAX_IDENTIFIER_BYTES, Identifier, check_suffix, parse

MAX_NAME_OCTETS = 255
MAX_LABEL_OCTETS = 63
B32 = "b32-"
_PLAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_B32_TAIL = re.compile(r"[0-9a-v]{1,63}\Z")


@dataclass(frozen=True, slots=True)
class Found:
    """What a name inside the zone stands for: an identifier, a node with no data, or nothing."""

    identifier: Identifier | None = None
    exists: bool = False  # True for the apex, hosted prefixes and their ancestors (nodes)


NOTHING = Found()
NODE = Found(exists=True)


def suffix_labels(suffix: str) -> list[str]:
    """The label(s) a suffix becomes, leftmost first."""
    if _PLAIN.match(suffix) and not suffix.startswith(B32) and not suffix.startswith("xn--"):
        return [suffix]
    encoded = B32 + base64.b32hexencode(suffix.encode()).decode("ascii").rstrip("=").lower()
    return [encoded[i : i + MAX_LABEL_OCTETS] for i in range(0, len(encoded), MAX_LABEL_OCTETS)]


def relative_labels(identifier: Identifier) -> list[str]:
    """The labels of an identifier's name below the zone, leftmost first."""
    return suffix_labels(identifier.suffix) + identifier.prefix.split(".")[::-1]


def wire_length(labels: Sequence[str], zone: str) -> int:
    """Octets of the name made of `labels` under `zone` in wire form."""
    return sum(len(label) + 1 for label in labels) + len(zone.encode()) + (zone != ".")


def dns_name(identifier: str, zone: str) -> str | None:
    """The DNS name of `identifier` under `zone`, or None when it would exceed 255 octets.

    Raises InvalidIdentifier when `identifier` is malformed.
    """
    zone = zone.lower() if zone.endswith(".") else zone.lower() + "."
    labels = relative_labels(parse(identifier))
    if wire_length(labels, zone) > MAX_NAME_OCTETS:
        return None
    return ".".join(labels) + "." + zone


def lookup(labels: Sequence[str], hosted: Container[str], nodes: Container[str]) -> Found:
    """What the name with relative `labels` (lowercase, leftmost first) stands for.

    `hosted` holds the prefixes served here; `nodes` holds them and all their
    ancestors (down to one segment). The longest hosted prefix decides which
    labels form the prefix, as DNS delegation would.
    """
    count = len(labels)
    if count == 0:
        return NODE
    if count <= 8 and ".".join(reversed(labels)) in nodes:
        return NODE
    for size in range(min(count - 1, 8), 1, -1):
        prefix = ".".join(reversed(labels[count - size :]))
        if prefix in hosted:
            return _suffix(prefix, labels[: count - size])
    return NOTHING


def _suffix(prefix: str, labels: Sequence[str]) -> Found:
    first = labels[0]
    if len(labels) == 1 and not first.startswith(B32):
        if first.startswith("xn--") or not _PLAIN.match(first):
            return NOTHING
        return Found(Identifier(prefix, first))
    if not first.startswith(B32):
        return NOTHING  # maybe an empty non-terminal inside a long name: resolver.dns.names decides
    text = "".join(labels)[len(B32) :]
    try:
        raw = base64.b32hexdecode(text.upper() + "=" * (-len(text) % 8))
        suffix = raw.decode("utf-8")
        check_suffix(suffix)
    except (binascii.Error, ValueError, InvalidIdentifier):
        return NOTHING
    if len(prefix) + 1 + len(raw) > MAX_IDENTIFIER_BYTES:
        return NOTHING
    if suffix_labels(suffix) != list(labels):
        return NOTHING  # not the canonical name of that suffix
    return Found(Identifier(prefix, suffix))  # `prefix` is hosted, so already canonical


def nodes_of(prefixes: Sequence[str] | set[str]) -> set[str]:
    """Every prefix and each of its ancestors down to one segment."""
    found: set[str] = set()
    for prefix in prefixes:
        segments = prefix.split(".")
        for size in range(1, len(segments) + 1):
            found.add(".".join(segments[:size]))
    return found


def tail_labels(identifier: Identifier) -> list[list[str]]:
    """The relative labels of the empty non-terminals inside an identifier's own name:
    its name with the first 1, 2, ... suffix labels taken off (none for a one-label suffix)."""
    suffix = suffix_labels(identifier.suffix)
    prefix = identifier.prefix.split(".")[::-1]
    return [suffix[cut:] + prefix for cut in range(1, len(suffix))]


def taken_by(identifier: Identifier, hosted: set[str]) -> str | None:
    """Why `identifier` has no name of its own in a zone hosting `hosted`, or None when it
    has one: the hosted prefix that owns its name, or its prefix not being hosted."""
    if identifier.prefix not in hosted:
        return f"its prefix {identifier.prefix} is not hosted here"
    labels = relative_labels(identifier)
    found = lookup(labels, hosted, nodes_of(hosted))
    if found.identifier == identifier:
        return None
    if found.identifier is not None:
        return f"prefix {found.identifier.prefix} takes that name over"
    return f"prefix {'.'.join(reversed(labels))} takes that name over"
