"""Handle values: validation, defaults, and what a caller may see."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from proto import handle_pb2
from registry.errors import InvalidValue, TooLarge, ValueNotFound
from registry.identifier import excerpt

DEFAULT_TTL_SECONDS = 86400
MAX_TYPE_BYTES = 128
MAX_DATA_BYTES = 65535
MAX_VALUES_PER_RECORD = 1000
MAX_RECORD_BYTES = 1 << 20
MAX_INDEX = 2**31 - 1
MAX_TTL_SECONDS = 2**31 - 1  # RFC 2181 §8: larger TTLs are invalid in DNS
# Handle's administrative types: who administers an identifier, where its prefix is served,
# keys and server lists. Their meaning to Handle clients is the node's to give, so callers
# may not write them (nor subtypes such as HS_SITE.6); the node writes them through
# registry.managed.
RESERVED_TYPES = frozenset({"HS_ADMIN", "HS_SITE", "HS_SECKEY", "HS_PUBKEY", "HS_VLIST", "HS_SERV"})

HandleValue = handle_pb2.HandleValue
# Types `normalise` has accepted for a caller (whether a type passes depends on nothing
# else): a batch names a few types thousands of times. Bounded: emptied when full.
_ACCEPTED_TYPES: set[str] = set()
MAX_ACCEPTED_TYPES = 4096


def normalise(
    values: Iterable[HandleValue], timestamp: int, managed: bool = False
) -> list[HandleValue]:
    """Validated copies of `values` for a write, sorted by index, stamped with `timestamp`.

    Reserved types are refused unless the node itself writes them (`managed`). Raises
    InvalidValue naming the value and the rule, TooLarge past the limits.
    """
    result: list[HandleValue] = []
    seen: set[int] = set()
    for position, value in enumerate(values, start=1):
        check(value, position)
        _check_write(value, position, managed)
        if value.index in seen:
            raise InvalidValue(f"value {position}: index {value.index} appears twice")
        seen.add(value.index)
        copy = HandleValue()
        copy.CopyFrom(value)
        copy.DiscardUnknownFields()  # bytes no limit counts: never stored or served
        copy.timestamp = timestamp
        if not copy.HasField("ttl"):
            copy.ttl = DEFAULT_TTL_SECONDS
        if copy.HasField("public_read") and copy.public_read:
            copy.ClearField("public_read")
        result.append(copy)
    check_limits(result)
    result.sort(key=lambda v: v.index)
    return result


def stamp_record(record: handle_pb2.Record, timestamp: int) -> handle_pb2.Record:
    """The values of `record` as `normalise(record.values, timestamp)` makes them, for
    batches. The common case (well-formed values of types accepted before) is checked
    and stamped in place, in one pass, and `record` itself is returned, its identifier
    as given: stamping again gives the same values, so a caller may send the record
    again. Anything else goes through `normalise` (a new record without identifier), so
    the rules and the messages are the same; values stamped before the pass left the
    fast path are ones `normalise` accepts and stamps alike. Raises as `normalise` does."""
    record.DiscardUnknownFields()  # of the record and its values: bytes no limit counts
    given = record.values
    seen: set[int] = set()
    total_bytes = previous = 0
    ordered = True
    for value in given:
        index, type_name = value.index, value.type
        data_bytes = len(value.data)  # each read of a bytes field is a copy: read it once
        if (
            type_name not in _ACCEPTED_TYPES
            or not 0 < index <= MAX_INDEX
            or index in seen
            or data_bytes > MAX_DATA_BYTES
        ):
            return _normalised_record(given, timestamp)
        ttl = value.ttl
        if ttl > MAX_TTL_SECONDS:
            return _normalised_record(given, timestamp)
        if not ttl and not value.HasField("ttl"):
            value.ttl = DEFAULT_TTL_SECONDS
        if value.public_read:  # set and true: the default, so not stored
            value.ClearField("public_read")
        value.timestamp = timestamp
        ordered = ordered and index > previous
        previous = index
        seen.add(index)
        total_bytes += data_bytes + len(type_name) + 16  # as check_limits counts
    if len(seen) > MAX_VALUES_PER_RECORD or total_bytes > MAX_RECORD_BYTES:
        return _normalised_record(given, timestamp)
    if not ordered:
        given.sort(key=_index)
    return record


def _normalised_record(new: Sequence[HandleValue], timestamp: int) -> handle_pb2.Record:
    normalised = normalise(new, timestamp)
    if len(_ACCEPTED_TYPES) > MAX_ACCEPTED_TYPES:
        _ACCEPTED_TYPES.clear()
    _ACCEPTED_TYPES.update(value.type for value in normalised)
    return handle_pb2.Record(values=normalised)


def _index(value: HandleValue) -> int:
    return value.index


def check_stored(values: Sequence[HandleValue]) -> None:
    """Raise InvalidValue or TooLarge unless a stored record is well-formed: the checks of
    `normalise` that every record must pass, whenever it was written."""
    seen: set[int] = set()
    for position, value in enumerate(values, start=1):
        check(value, position)
        if value.index in seen:
            raise InvalidValue(f"value {position}: index {value.index} appears twice")
        seen.add(value.index)
    check_limits(values)


def check_limits(values: Sequence[HandleValue]) -> None:
    """Raise TooLarge when a whole record has too many values or too many bytes."""
    if len(values) > MAX_VALUES_PER_RECORD:
        raise TooLarge(f"record has {len(values)} values, more than {MAX_VALUES_PER_RECORD}")
    total = sum(len(v.data) + len(v.type) + 16 for v in values)
    if total > MAX_RECORD_BYTES:
        raise TooLarge(f"record is {total} bytes, more than {MAX_RECORD_BYTES}")


def check(value: HandleValue, position: int) -> None:
    """Raise InvalidValue unless `value` is well-formed."""
    type_name = value.type
    if (
        0 < value.index <= MAX_INDEX
        and type_name
        and len(type_name.encode()) <= MAX_TYPE_BYTES
        and type_name.isprintable()
        and " " not in type_name
        and len(value.data) <= MAX_DATA_BYTES
    ):
        return  # the common case, without building a message
    where = f"value {position} (index {value.index})"
    if not 1 <= value.index <= MAX_INDEX:
        raise InvalidValue(f"{where}: index must be between 1 and {MAX_INDEX}")
    if not type_name:
        raise InvalidValue(f"{where}: type is empty")
    if len(type_name.encode()) > MAX_TYPE_BYTES:
        raise InvalidValue(f"{where}: type is longer than {MAX_TYPE_BYTES} bytes")
    if not type_name.isprintable() or " " in type_name:
        raise InvalidValue(f"{where}: type {type_name!r} contains a space or control character")
    raise InvalidValue(f"{where}: data is longer than {MAX_DATA_BYTES} bytes")


def _check_write(value: HandleValue, position: int, managed: bool) -> None:
    """The rules for what is written now (older records may predate them)."""
    where = f"value {position} (index {value.index})"
    if value.HasField("ttl") and value.ttl > MAX_TTL_SECONDS:
        raise InvalidValue(
            f"{where}: ttl {value.ttl} is more than {MAX_TTL_SECONDS} seconds, "
            "the largest DNS allows (RFC 2181 section 8)"
        )
    if not managed and is_reserved(value.type):
        raise InvalidValue(
            f"{where}: type {value.type} is reserved for values the node manages "
            f"({', '.join(sorted(RESERVED_TYPES))})"
        )


def is_reserved(type_name: str) -> bool:
    """True for a reserved Handle type or a subtype of one, in any letter case."""
    return type_name.upper().partition(".")[0] in RESERVED_TYPES


def is_public(value: HandleValue) -> bool:
    return not value.HasField("public_read") or value.public_read


def same_content(a: Sequence[HandleValue], b: Sequence[HandleValue]) -> bool:
    """True when two value lists differ at most in their timestamps."""
    if len(a) != len(b):
        return False
    for left, right in zip(a, b, strict=True):
        if (
            left.index != right.index
            or left.type != right.type
            or left.data != right.data
            or left.ttl != right.ttl
            or is_public(left) != is_public(right)
        ):
            return False
    return True


def select(
    values: Sequence[HandleValue],
    types: Sequence[str] = (),
    indexes: Sequence[int] = (),
    include_restricted: bool = False,
) -> list[HandleValue]:
    """The values a resolve returns: filtered by type (case-insensitive) and index."""
    wanted_types = {t.lower() for t in types}
    wanted_indexes = set(indexes)
    return [
        value
        for value in values
        if (include_restricted or is_public(value))
        and (not wanted_types or value.type.lower() in wanted_types)
        and (not wanted_indexes or value.index in wanted_indexes)
    ]


def none_matching(identifier: str, types: Sequence[str], indexes: Sequence[int]) -> ValueNotFound:
    """The error for a resolve of `identifier` whose type or index filter matched none of
    its values (every face answers it alike; the filter is quoted as a short excerpt)."""
    wanted = excerpt(", ".join([*types, *map(str, indexes)]))
    return ValueNotFound(f"identifier {identifier} has no value matching {wanted}")
