"""Proxy resolution: GET /{identifier} redirects, shows a page, or answers JSON."""

from __future__ import annotations

from urllib.parse import quote

from registry import accounts
from tests.http.conftest import Face, text_value, url_value


def test_redirects_to_the_first_public_url_with_the_ttl_as_max_age(face: Face) -> None:
    face.register(
        "88.118.8/JXDY2106023",
        url_value(3, "https://example.com/later"),
        url_value(2, "https://example.com/private", public_read=False),
        url_value(1, "https://example.com/p/1", ttl=600),
    )

    reply = face.get("/88.118.8/JXDY2106023")

    assert reply.status == 302
    assert reply.headers["location"] == "https://example.com/p/1"
    assert reply.headers["cache-control"] == "max-age=600"


def test_noredirect_shows_the_public_values_as_a_page(face: Face) -> None:
    face.register(
        "88.118.8/A1",
        url_value(1, "https://example.com/a1"),
        text_value(2, "batch", "2026-11 <b>"),
        text_value(3, "secret", "hidden", public_read=False),
    )

    reply = face.get("/88.118.8/A1?noredirect")

    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert '<a href="https://example.com/a1"' in reply.text
    assert "2026-11 &lt;b&gt;" in reply.text
    assert "hidden" not in reply.text


def test_a_record_without_url_shows_the_page_in_chinese_when_preferred(face: Face) -> None:
    face.register("88.118.8/B1", text_value(1, "product.name", "水泵"))

    reply = face.get("/88.118.8/B1", accept_language="zh-CN,zh;q=0.9,en;q=0.8")

    assert reply.status == 200
    assert "水泵" in reply.text and "数据" in reply.text
    english = face.get("/88.118.8/B1", accept_language="en-US,en;q=0.9,zh;q=0.5")
    assert "Data" in english.text


def test_accept_json_gives_the_rest_json(face: Face) -> None:
    face.register("88.118.8/C1", url_value(1, "https://example.com/c1"))

    reply = face.get("/88.118.8/C1", accept="application/json")

    assert reply.status == 200
    document = reply.json()
    assert document["responseCode"] == 1 and document["handle"] == "88.118.8/C1"
    assert document["values"][0]["data"] == {"format": "string", "value": "https://example.com/c1"}


def test_unknown_identifier_is_a_404_page_with_the_form(face: Face) -> None:
    reply = face.get("/88.118.8/nothing-here")

    assert reply.status == 404
    assert 'id="not-found"' in reply.text and "<form" in reply.text
    assert "88.118.8/nothing-here" in reply.text


def test_percent_encoded_and_non_ascii_suffixes_resolve(face: Face) -> None:
    face.register("88.118.8/批次/2024", url_value(1, "https://example.com/批次"))

    reply = face.get("/" + quote("88.118.8/批次%2F2024".replace("%2F", "/"), safe="/"))
    encoded_slash = face.get("/88.118.8/" + quote("批次") + "%2F2024")

    assert reply.status == encoded_slash.status == 302
    assert reply.headers["location"] == "https://example.com/" + quote("批次")


def test_prefix_is_case_insensitive_and_the_suffix_is_not(face: Face) -> None:
    face.register("88.118.8/Case", url_value(1, "https://example.com/case"))

    assert face.get("/88.118.8/Case").status == 302
    assert face.get("/88.118.8/case").status == 404


def test_lookup_form_and_its_submission(face: Face) -> None:
    home = face.get("/", accept_language="zh")
    submitted = face.get("/?id=" + quote("88.118.8/批次 1"))

    assert home.status == 200 and 'name="id"' in home.text and "查询标识" in home.text
    assert submitted.status == 303
    assert submitted.headers["location"] == "/88.118.8/" + quote("批次 1") + "?noredirect"


def test_a_change_in_the_store_is_seen_at_once(face: Face) -> None:
    face.register("88.118.8/D1", url_value(1, "https://example.com/old"))
    assert face.get("/88.118.8/D1").headers["location"] == "https://example.com/old"
    assert face.get("/api/handles/88.118.8/D1").json()["values"][0]["data"]["value"].endswith("old")

    admin = accounts.authenticate(face.store, face.admin_token)
    face.registry.modify_values(admin, "88.118.8/D1", [url_value(1, "https://example.com/new")])

    assert face.get("/88.118.8/D1").headers["location"] == "https://example.com/new"
    assert face.get("/api/handles/88.118.8/D1").json()["values"][0]["data"]["value"].endswith("new")


def test_only_http_urls_are_redirected_to(face: Face) -> None:
    face.register("88.118.8/E1", url_value(1, "javascript:alert(1)"))

    reply = face.get("/88.118.8/E1")

    assert reply.status == 200
    assert "<a " not in reply.text.split('id="values"')[1].split("</main>")[0]


def test_healthz_is_ok_and_never_an_identifier(face: Face) -> None:
    reply = face.get("/healthz")

    assert (reply.status, reply.body) == (200, b"ok\n")
