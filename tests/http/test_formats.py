"""Value formats both ways: what a client writes it reads back, whatever the bytes."""

from __future__ import annotations

import base64
import contextlib
import json

from hypothesis import given
from hypothesis import strategies as st

from registry.errors import IdnodeError
from resolver.http import formats

ADMIN = st.fixed_dictionaries({
    "handle": st.text(min_size=1, max_size=60).filter(lambda t: t.encode("utf-8", "ignore") == t.encode("utf-8", "surrogatepass")),
    "index": st.integers(min_value=1, max_value=2**31 - 1),
    "permissions": st.text(alphabet="01", min_size=12, max_size=12),
})  # fmt: skip


@given(ADMIN)
def test_admin_values_round_trip(admin: dict[str, object]) -> None:
    data = formats.encode_admin(admin, "value 1")

    assert formats.data_json("HS_ADMIN", data) == {"format": "admin", "value": admin}


@given(st.binary(max_size=300))
def test_any_bytes_come_back_as_written(data: bytes) -> None:
    entry = {
        "index": 1,
        "type": "blob",
        "data": {"format": "base64", "value": base64.b64encode(data).decode()},
    }
    value = formats.value_from_json(entry, 1)
    shown = formats.data_json(value.type, value.data)

    assert value.data == data
    decoded = (
        shown["value"].encode() if shown["format"] == "string" else base64.b64decode(shown["value"])
    )
    assert decoded == data


@given(st.text(max_size=200))
def test_malformed_bodies_raise_domain_errors_only(text: str) -> None:
    with contextlib.suppress(IdnodeError):  # anything else escaping is the failure
        formats.values_from_body(text.encode("utf-8", "surrogatepass"))


def test_short_admin_permissions_are_padded_with_zeros() -> None:
    data = formats.encode_admin(
        {"handle": "0.NA/88.118.8", "index": "200", "permissions": "0111"}, "v"
    )

    assert formats.decode_admin(data) == {
        "handle": "0.NA/88.118.8",
        "index": 200,
        "permissions": "011100000000",
    }
    assert json.loads(json.dumps(formats.data_json("HS_ADMIN", data)))["format"] == "admin"
