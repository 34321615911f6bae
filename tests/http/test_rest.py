"""The Handle REST API: resolve with filters, PUT, DELETE, listing, credentials, formats."""

from __future__ import annotations

import base64
import re

import pytest

from registry import accounts
from tests.http.conftest import Face, basic, text_value, url_value

ID = "88.118.8/JXDY2106023"
PATH = "/api/handles/" + ID


def seeded(face: Face) -> None:
    face.register(
        ID,
        url_value(1, "https://example.com/p/1", ttl=600),
        url_value(2, "https://example.com/p/2"),
        text_value(3, "URL.mobile", "https://m.example.com/p/1"),
        text_value(4, "batch", "2026-11"),
        text_value(5, "secret", "only the owner", public_read=False),
    )


def indexes(document: dict[str, object]) -> list[int]:
    values = document["values"]
    assert isinstance(values, list)
    return [int(v["index"]) for v in values]


def test_resolve_gives_handle_json_with_public_values(face: Face) -> None:
    seeded(face)

    reply = face.get(PATH)

    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    document = reply.json()
    assert document["responseCode"] == 1 and document["handle"] == ID
    assert indexes(document) == [1, 2, 3, 4]
    first = document["values"][0]
    assert first["type"] == "URL" and first["ttl"] == 600
    assert first["data"] == {"format": "string", "value": "https://example.com/p/1"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["timestamp"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?type=url", [1, 2]),
        ("?type=URL.", [3]),
        ("?index=4", [4]),
        ("?type=batch&index=1", [1, 4]),
        ("?index=2&index=3", [2, 3]),
    ],
)
def test_type_and_index_filters_are_or_ed(face: Face, query: str, expected: list[int]) -> None:
    seeded(face)

    assert indexes(face.get(PATH + query).json()) == expected


def test_a_filter_matching_nothing_is_response_code_200(face: Face) -> None:
    seeded(face)

    reply = face.get(PATH + "?type=EMAIL")

    assert reply.status == 200
    assert reply.json()["responseCode"] == 200 and reply.json()["handle"] == ID


def test_a_filter_matching_nothing_is_named_by_a_short_excerpt(face: Face) -> None:
    seeded(face)

    reply = face.get(PATH + "?type=" + "NOPE" * 100 + "&index=9")

    message = reply.json()["message"]
    assert message.startswith(f"identifier {ID} has no value matching 'NOPENOPE")
    assert "(403 bytes)" in message and len(message) < 200  # not the whole filter back


def test_private_values_only_for_the_owner_and_the_administrator(face: Face) -> None:
    seeded(face)
    other = face.registry.create_enterprise(
        accounts.authenticate(face.store, face.admin_token), code="9"
    )

    def seen(token: str | None, query: str = "") -> list[int]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return indexes(face.request("GET", PATH + query, headers=headers).json())

    assert seen(None) == [1, 2, 3, 4]
    assert seen(other.token) == [1, 2, 3, 4]
    assert seen(face.enterprise_token) == [1, 2, 3, 4, 5]
    assert seen(face.admin_token) == [1, 2, 3, 4, 5]
    assert seen(face.enterprise_token, "?publicOnly=true") == [1, 2, 3, 4]


def test_put_creates_with_201_then_replaces_with_200(face: Face) -> None:
    token = face.enterprise_token
    values = [{"index": 1, "type": "URL", "data": {"format": "string", "value": "https://a"}}]

    created = face.put(PATH, {"values": values}, token)
    replaced = face.put(PATH, {"values": [{"index": 7, "type": "batch", "data": "B"}]}, token)

    assert (created.status, created.json()) == (201, {"responseCode": 1, "handle": ID})
    assert replaced.status == 200
    assert indexes(face.get(PATH).json()) == [7]


def test_put_overwrite_false_on_an_existing_identifier_is_409(face: Face) -> None:
    seeded(face)

    reply = face.put(PATH + "?overwrite=false", {"values": []}, face.enterprise_token)

    assert reply.status == 409 and reply.json()["responseCode"] == 101
    assert indexes(face.get(PATH).json()) == [1, 2, 3, 4]


def test_put_with_index_changes_only_those_values(face: Face) -> None:
    seeded(face)
    body = {"values": [{"index": 4, "type": "batch", "data": "2027-01"},
                       {"index": 9, "type": "ignored", "data": "x"}]}  # fmt: skip

    reply = face.put(PATH + "?index=4", body, face.enterprise_token)
    taken = face.put(PATH + "?index=4&overwrite=false", body, face.enterprise_token)

    assert reply.status == 200
    document = face.get(PATH + "?index=4").json()
    assert document["values"][0]["data"]["value"] == "2027-01"
    assert indexes(face.get(PATH).json()) == [1, 2, 3, 4]
    assert taken.status == 409 and taken.json()["responseCode"] == 201


def test_delete_by_index_then_the_whole_record(face: Face) -> None:
    seeded(face)
    token = face.enterprise_token

    by_index = face.delete(PATH + "?index=2&index=3", token)
    absent_index = face.delete(PATH + "?index=2", token)
    whole = face.delete(PATH, token)
    again = face.delete(PATH, token)

    assert (by_index.status, absent_index.status, whole.status) == (200, 400, 200)
    assert absent_index.json()["responseCode"] == 200
    assert (again.status, again.json()["responseCode"], again.json()["handle"]) == (404, 100, ID)
    assert face.get(PATH).status == 404


def test_writes_need_a_valid_credential_for_the_prefix(face: Face) -> None:
    other = face.registry.create_enterprise(
        accounts.authenticate(face.store, face.admin_token), code="9"
    )
    body = {"values": [{"index": 1, "type": "URL", "data": "https://a"}]}

    anonymous = face.put(PATH, body)
    unknown = face.put(PATH, body, "idn_not-a-real-token-at-all")
    foreign = face.put(PATH, body, other.token)

    assert (anonymous.status, anonymous.json()["responseCode"]) == (401, 402)
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert (unknown.status, unknown.json()["responseCode"]) == (401, 403)
    assert (foreign.status, foreign.json()["responseCode"]) == (403, 401)
    assert face.get(PATH).status == 404


@pytest.mark.parametrize(
    "user", ["300:0.NA/88.118.8", "300%3A0.NA%2F88.118.8", "88.118.8", "200:0.na/88.118.8"]
)
def test_basic_credentials_name_the_account_handle_style(face: Face, user: str) -> None:
    headers = {"Authorization": basic(user, face.enterprise_token)}

    reply = face.request("PUT", PATH, b'{"values":[{"index":1,"type":"URL","data":"https://a"}]}',
                         headers)  # fmt: skip

    assert reply.status == 201


@pytest.mark.parametrize("user", ["300:0.NA/88.118", "admin", "300:0.NA/88.118.9", "x"])
def test_basic_user_that_is_not_the_tokens_account_is_refused(face: Face, user: str) -> None:
    headers = {"Authorization": basic(user, face.enterprise_token)}

    reply = face.request("DELETE", PATH, headers=headers)

    assert reply.status == 401 and reply.json()["responseCode"] == 403


def test_the_administrator_signs_in_as_the_node_prefix_handle(face: Face) -> None:
    seeded(face)
    headers = {"Authorization": basic("300:0.NA/88.118", face.admin_token)}

    assert face.request("DELETE", PATH + "?index=1", headers=headers).status == 200


def test_prefix_handles_exist_for_hosted_prefixes(face: Face) -> None:
    reply = face.get("/api/handles/0.NA/88.118.8")
    absent = face.get("/api/handles/0.NA/88.118.77")

    assert reply.status == 200
    document = reply.json()
    assert document["handle"] == "0.NA/88.118.8"
    assert document["values"][0]["type"] == "HS_ADMIN"
    assert document["values"][0]["data"]["value"]["handle"] == "0.NA/88.118.8"
    assert (absent.status, absent.json()["responseCode"]) == (404, 100)


def test_value_formats_round_trip(face: Face) -> None:
    values = [
        {"index": 1, "type": "blob", "data": {"format": "base64", "value": base64.b64encode(b"\xff\x00").decode()}},
        {"index": 2, "type": "blob", "data": {"format": "hex", "value": "cafe"}},
        {"index": 4, "type": "name", "data": {"format": "string", "value": "水泵 №1"}},
        {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {
            "handle": "0.NA/88.118.8", "index": "200", "permissions": "011111110011"}}},
    ]  # fmt: skip

    assert face.put(PATH, {"values": values}, face.enterprise_token).status == 201

    shown = {v["index"]: v["data"] for v in face.get(PATH).json()["values"]}
    assert shown == {
        1: {"format": "base64", "value": base64.b64encode(b"\xff\x00").decode()},
        2: {"format": "base64", "value": base64.b64encode(b"\xca\xfe").decode()},
        4: {"format": "string", "value": "水泵 №1"},
    }  # the HS_ADMIN a Handle client sends is accepted, not kept: the prefix owner rules


def test_values_the_node_manages_cannot_be_written(face: Face) -> None:
    site = {"index": 3, "type": "HS_SITE", "data": {"format": "site", "value": {"servers": []}}}

    reply = face.put(PATH, {"values": [site]}, face.enterprise_token)

    assert (reply.status, reply.json()["responseCode"]) == (400, 202)
    assert "reserved" in reply.json()["message"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"values": 3}', "must be"),
        (b'{"values": [{"index": 1, "type": "x", "data": {"format": "base64", "value": "!!"}}]}', "not valid base64"),
        (b'{"values": [{"index": 1, "type": "x", "data": {"format": "rot13", "value": "a"}}]}', "unknown data format"),
        (b'{"values": [{"index": 0, "type": "x", "data": "a"}]}', "index"),
        (b'{"values": [{"index": 1, "type": "x", "data": "' + b"a" * 70_000 + b'"}]}', "longer than"),
    ],
)  # fmt: skip
def test_malformed_bodies_are_400_naming_the_problem(face: Face, body: bytes, says: str) -> None:
    seeded(face)
    headers = {"Authorization": f"Bearer {face.enterprise_token}"}

    reply = face.request("PUT", PATH, body, headers)

    assert reply.status == 400, reply.body[:200]
    assert says in reply.json()["message"]
    assert indexes(face.get(PATH).json()) == [1, 2, 3, 4]


def test_listing_pages_through_a_prefix(face: Face) -> None:
    for i in range(5):
        face.register(f"88.118.8/item-{i}", url_value(1, f"https://example.com/{i}"))
    auth = {"Authorization": f"Bearer {face.enterprise_token}"}

    first = face.request("GET", "/api/handles?prefix=88.118.8&pageSize=2", headers=auth).json()
    third = face.request("GET", "/api/handles?prefix=88.118.8&pageSize=2&page=2", headers=auth)
    anonymous = face.get("/api/handles?prefix=88.118.8")

    assert first["handles"] == ["88.118.8/item-0", "88.118.8/item-1"]
    assert first["nextPageToken"] == "88.118.8/item-1"
    assert third.json()["handles"] == ["88.118.8/item-4"]
    assert "nextPageToken" not in third.json()
    assert anonymous.status == 401


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/handles/no-slash", 400, 102),
        ("/api/handles/88.118.8/" + "x" * 300, 400, 102),
        ("/api/handles/88.118.8/%FF%FE", 400, 102),
        ("/api/handles/99.1/x", 400, 301),
        ("/api/handles/88.118.8/x?index=abc", 400, 4),
    ],
)
def test_bad_identifiers_and_parameters(face: Face, path: str, status: int, code: int) -> None:
    reply = face.get(path)

    assert (reply.status, reply.json()["responseCode"]) == (status, code)
    assert len(reply.json()["message"]) < 200
