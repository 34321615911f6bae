"""Resolution answers as encoded HTTP responses: REST JSON, redirects, pages, errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from proto import handle_pb2, resolver_pb2
from registry import values
from registry.errors import IdnodeError, ReadOnlyReplica, SequenceNotReached
from resolver.http import formats, pages
from resolver.http.cache import Encoded, Headers, encoded
from resolver.http.errors import status_of

HandleValue = handle_pb2.HandleValue
JSON: Headers = [(b"content-type", b"application/json")]
HTML: Headers = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"x-content-type-options", b"nosniff"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    ),
]
NO_CACHE: Headers = [(b"cache-control", b"no-cache")]
VARY: Headers = [(b"vary", b"accept, accept-language")]
# Characters a URL may carry as they are in a Location header; the rest is percent-encoded.
URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
SUCCESS = 1
VALUES_NOT_FOUND = 200


def dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def rest_record(
    identifier: str, shown: Sequence[HandleValue], status: int = 200, result: str = "ok"
) -> Encoded:
    """Handle's record JSON: {"responseCode": 1, "handle", "values": [...]}."""
    body = dump(
        {
            "responseCode": SUCCESS,
            "handle": identifier,
            "values": [formats.value_json(v) for v in shown],
        }
    )
    return encoded(status, JSON + NO_CACHE, body, result)


def rest_error(
    error: IdnodeError, handle: str = "", resolving: bool = False, result: str = ""
) -> Encoded:
    """Handle's error JSON: {"responseCode": N, "handle", "message"}."""
    document: dict[str, Any] = {"responseCode": error.handle_code}
    if handle:
        document["handle"] = handle
    document["message"] = str(error)
    headers = JSON + NO_CACHE
    status = status_of(error, resolving)
    if status == 401:
        headers = [*headers, (b"www-authenticate", b'Basic realm="idnode", charset="UTF-8"')]
    return encoded(status, headers, dump(document), result or "error")


def rest_done(identifier: str, status: int = 200, sequence: int = 0) -> Encoded:
    """What a write answers: {"responseCode": 1, "handle"}, and in `X-Idnode-Sequence` the
    change-log sequence of the write (read-your-writes: send it back as
    X-Idnode-Min-Sequence)."""
    headers = JSON + NO_CACHE
    if sequence:
        headers = [*headers, (b"x-idnode-sequence", str(sequence).encode())]
    return encoded(status, headers, dump({"responseCode": SUCCESS, "handle": identifier}))


def not_reached(error: SequenceNotReached) -> Encoded:
    """A replica behind the X-Idnode-Min-Sequence asked for: 503, ask again in a second."""
    document = {"responseCode": error.handle_code, "message": str(error)}
    headers = [*JSON, *NO_CACHE, (b"retry-after", b"1")]
    return encoded(503, headers, dump(document), "error")


def to_primary(refusal: ReadOnlyReplica, scope: dict[str, Any]) -> Encoded:
    """A replica's answer to a write: 307 to the same URL on the primary's HTTP face (the
    method and body are kept), or 503 naming the primary when its site is unknown."""
    if not refusal.primary_http:
        return rest_error(refusal)
    target = scope.get("raw_path", b"").decode("latin-1") or quote(scope["path"])
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    location = refusal.primary_http.rstrip("/") + target
    return encoded(307, [(b"location", location.encode("latin-1")), *NO_CACHE], b"", "")


def public(record: handle_pb2.Record) -> list[HandleValue]:
    return [v for v in record.values if values.is_public(v)]


def select(
    shown: Sequence[handle_pb2.HandleValue],
    types: Sequence[str],
    indexes: Sequence[int],
    restricted: bool,
) -> list[handle_pb2.HandleValue]:
    """Handle's filters: a value matching any type= or any index= (a type ending in `.`
    takes its subtypes); restricted values only for the owner and the administrator."""
    exact = {t.lower() for t in types if not t.endswith(".")}
    families = tuple(t.lower() for t in types if t.endswith("."))
    wanted = set(indexes)
    return [
        v
        for v in shown
        if (restricted or values.is_public(v))
        and (
            not (types or indexes)
            or v.index in wanted
            or v.type.lower() in exact
            or (families and v.type.lower().startswith(families))
        )
    ]


def proxy(identifier: str, shown: Sequence[HandleValue], lang: str, redirect: bool) -> Encoded:
    """Redirect to the first public http(s) URL value, else the page of public values."""
    if redirect:
        for value in shown:
            if value.type.upper() != "URL":
                continue
            target = value.data.decode("utf-8", "replace")
            if target.startswith(pages.LINK_SCHEMES):
                return redirect_to(quote(target, safe=URL_SAFE), _ttl(value))
    ttl = min((_ttl(v) for v in shown), default=60)
    cache = [(b"cache-control", f"max-age={ttl}".encode())]
    return encoded(200, HTML + cache + VARY, pages.values(lang, identifier, shown), "ok")


def redirect_to(location: str, ttl_seconds: int, status: int = 302) -> Encoded:
    """A redirect whose Location is already ASCII (percent-encoded); no body, few headers:
    every header costs the server a little on every hit."""
    headers = [
        (b"location", location.encode("ascii")),
        (b"cache-control", f"max-age={ttl_seconds}".encode()),
        (b"vary", b"accept"),  # the same URL answers JSON to Accept: application/json
    ]
    return encoded(status, headers, b"", "ok")


def page_error(
    error: IdnodeError, identifier: str, lang: str, result: str, status: int = 0
) -> Encoded:
    """The page for a failed resolution: 404 with the form, or the reason."""
    status = status or status_of(error, resolving=True)
    if status == 404:
        body = pages.not_found(lang, identifier)
    else:
        body = pages.error(lang, str(error), identifier)
    return encoded(status, HTML + NO_CACHE + VARY, body, result)


def http_site(reply: resolver_pb2.ResolveResponse) -> str:
    """The base URL of the first referred site with an HTTP face, or ""."""
    for site in reply.referral.sites:
        if site.http_address.startswith(pages.LINK_SCHEMES):
            return site.http_address.rstrip("/")
    return ""


def _ttl(value: HandleValue) -> int:
    return value.ttl if value.HasField("ttl") else values.DEFAULT_TTL_SECONDS
