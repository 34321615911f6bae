"""Handle REST JSON values: data formats string, base64, hex, admin and site, both ways."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from datetime import UTC, datetime
from typing import Any

from proto import handle_pb2
from registry.errors import InvalidRequest, InvalidValue, TooLarge
from registry.values import MAX_INDEX, MAX_VALUES_PER_RECORD

HandleValue = handle_pb2.HandleValue
PERMISSION_BITS = 12
_ADMIN_HEAD = struct.Struct(">HI")  # permissions, length of the admin handle
_ADMIN_INDEX = struct.Struct(">I")


def excerpt(text: str, limit: int = 40) -> str:
    """A short, escaped quotation of client input for an error message."""
    quoted = repr(text[:limit])
    return quoted + "…" if len(text) > limit else quoted


# Reading: stored value -> JSON ------------------------------------------------------


def value_json(value: HandleValue) -> dict[str, Any]:
    """One value as Handle.Net's REST API shows it."""
    return {
        "index": value.index,
        "type": value.type,
        "data": data_json(value.type, value.data),
        "ttl": value.ttl if value.HasField("ttl") else 86400,
        "timestamp": iso_time(value.timestamp),
    }


def data_json(kind: str, data: bytes) -> dict[str, Any]:
    """The `data` member: admin and site values decoded, text as string, the rest base64."""
    upper = kind.upper()
    if upper == "HS_ADMIN":
        admin = decode_admin(data)
        if admin is not None:
            return {"format": "admin", "value": admin}
    if upper == "HS_SITE" and data.startswith(b"{"):
        try:
            site = json.loads(data)
        except ValueError:
            site = None
        if isinstance(site, dict):
            return {"format": "site", "value": site}
    try:
        return {"format": "string", "value": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"format": "base64", "value": base64.b64encode(data).decode("ascii")}


def iso_time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_admin(data: bytes) -> dict[str, Any] | None:
    """HS_ADMIN in the Handle wire layout (permissions, handle, index), or None."""
    if len(data) < _ADMIN_HEAD.size + _ADMIN_INDEX.size:
        return None
    permissions, length = _ADMIN_HEAD.unpack_from(data)
    if len(data) != _ADMIN_HEAD.size + length + _ADMIN_INDEX.size:
        return None
    try:
        handle = data[_ADMIN_HEAD.size : _ADMIN_HEAD.size + length].decode("utf-8")
    except UnicodeDecodeError:
        return None
    (index,) = _ADMIN_INDEX.unpack_from(data, _ADMIN_HEAD.size + length)
    bits = format(permissions, f"0{PERMISSION_BITS}b")[-PERMISSION_BITS:]
    return {"handle": handle, "index": index, "permissions": bits}


def encode_admin(value: Any, where: str) -> bytes:
    """Raises InvalidValue unless `value` is {"handle", "index", "permissions"}."""
    if not isinstance(value, dict):
        raise InvalidValue(f"{where}: an admin value must be an object")
    handle, index = value.get("handle"), _integer(value.get("index"), f"{where} admin index")
    bits = value.get("permissions", "0" * PERMISSION_BITS)
    if not isinstance(handle, str) or not handle or len(handle) > 255:
        raise InvalidValue(f"{where}: admin handle must be a string of 1 to 255 characters")
    if not isinstance(bits, str) or len(bits) > PERMISSION_BITS or set(bits) - {"0", "1"}:
        raise InvalidValue(f"{where}: permissions must be up to {PERMISSION_BITS} '0'/'1' bits")
    raw = handle.encode("utf-8")
    permissions = int(bits.ljust(PERMISSION_BITS, "0"), 2)
    return _ADMIN_HEAD.pack(permissions, len(raw)) + raw + _ADMIN_INDEX.pack(index)


# Writing: JSON -> value to store ---------------------------------------------------------


def values_from_body(body: bytes) -> list[HandleValue]:
    """The values of a PUT body: {"values": [...]} (or a bare list).

    Raises InvalidRequest for malformed JSON, InvalidValue naming the bad value,
    TooLarge past the record's value count.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        reason = str(error) if isinstance(error, ValueError) else "nested too deeply"
        raise InvalidRequest(f"request body is not valid JSON: {reason[:80]}") from None
    entries = document.get("values") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise InvalidRequest('request body must be {"values": [...]}')
    if len(entries) > MAX_VALUES_PER_RECORD:
        raise TooLarge(f"{len(entries)} values, more than {MAX_VALUES_PER_RECORD}")
    return [value_from_json(entry, position) for position, entry in enumerate(entries, 1)]


def value_from_json(entry: Any, position: int) -> HandleValue:
    """One JSON value. Raises InvalidValue naming the value and what is wrong."""
    where = f"value {position}"
    if not isinstance(entry, dict):
        raise InvalidValue(f"{where}: must be an object")
    kind = entry.get("type")
    if not isinstance(kind, str):
        raise InvalidValue(f"{where}: type must be a string")
    value = HandleValue(index=_integer(entry.get("index"), f"{where} index"), type=kind)
    value.data = _data(entry.get("data"), where)
    if entry.get("ttl") is not None:
        value.ttl = _integer(entry["ttl"], f"{where} ttl", minimum=0)
    public = entry.get("publicRead")
    if public is not None:
        if not isinstance(public, bool):
            raise InvalidValue(f"{where}: publicRead must be true or false")
        value.public_read = public
    return value


def _data(data: Any, where: str) -> bytes:
    if isinstance(data, str):  # a bare string, as pyhandle sends a modified value
        return data.encode("utf-8")
    if not isinstance(data, dict):
        raise InvalidValue(f"{where}: data must be a string or {{format, value}}")
    kind, value = data.get("format", "string"), data.get("value")
    if kind == "admin":
        return encode_admin(value, where)
    if kind == "site":
        if not isinstance(value, dict):
            raise InvalidValue(f"{where}: a site value must be an object")
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    if not isinstance(value, str):
        raise InvalidValue(f"{where}: data value must be a string for format {excerpt(kind)}")
    try:
        if kind == "string":
            return value.encode("utf-8")
        if kind == "base64":
            return base64.b64decode(value, validate=True)
        if kind == "hex":
            return bytes.fromhex(value)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidValue(f"{where}: data is not valid {kind}") from None
    raise InvalidValue(
        f"{where}: unknown data format {excerpt(str(kind))} (string, base64, hex, admin, site)"
    )


def _integer(raw: Any, what: str, minimum: int = 1) -> int:
    """An integer sent as a number or as digits (pyhandle sends "200")."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidValue(f"{what} must be an integer")
    if isinstance(raw, str):
        if not raw.isdigit() or len(raw) > 10:
            raise InvalidValue(f"{what} must be an integer, not {excerpt(raw)}")
        raw = int(raw)
    number = int(raw)
    if not minimum <= number <= MAX_INDEX:
        raise InvalidValue(f"{what} must be between {minimum} and {MAX_INDEX}")
    return number
