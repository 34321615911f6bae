"""The HTTP face's ASGI app: routes, the cached hot path, and the REST API's plumbing."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote_to_bytes

import metrics
from proto import resolver_pb2
from registry import accounts, values
from registry.errors import (
    IdnodeError,
    InvalidIdentifier,
    InvalidRequest,
    SequenceNotReached,
    TooLarge,
)
from registry.identifier import MAX_IDENTIFIER_BYTES, cache_key
from registry.nodekey import PREFIX_HANDLE
from registry.registry import DEFAULT_PAGE_SIZE, Registry
from resolver.auth import Authenticator
from resolver.follow import ChangeFollower
from resolver.grpc_follow import ReferralFollower
from resolver.grpc_resolve import Answer
from resolver.http import answers, pages
from resolver.http.answers import select
from resolver.http.cache import Encoded, ResponseCache, encoded
from resolver.http.config import HttpOptions
from resolver.http.formats import excerpt
from resolver.http.proofs import proven
from resolver.http.rest import Credentials, Writer
from resolver.readonly import Replica, SequenceGate, parse_min_sequence

log = logging.getLogger("idnode.http")
T = TypeVar("T")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Resolve = Callable[[str], Answer]
"""The shared resolution: the gRPC face's answer cache (record, owner, referral, error)."""

API = "/api/handles"
API_ITEM = API + "/"
METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "POST", "OPTIONS", "PATCH"})
STATUS_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")
MAX_QUERY_FIELDS = 64
INTERNAL = encoded(
    500, answers.JSON + answers.NO_CACHE, b'{"responseCode":2,"message":"internal error"}'
)
NOT_ALLOWED = encoded(
    405, [(b"allow", b"GET, HEAD, PUT, DELETE"), (b"content-type", b"text/plain")],
    b"method not allowed\n",
)  # fmt: skip
NOTHING_HERE = encoded(404, [(b"content-type", b"text/plain")], b"not found\n")
# Liveness for load balancers, and the server stack's own floor in the benchmark:
# the least a request can cost here (routing, one write of fixed bytes).
HEALTHY = encoded(200, [(b"content-type", b"text/plain"), (b"cache-control", b"no-store")], b"ok\n")
UNHEALTHY = encoded(
    503, [(b"content-type", b"text/plain"), (b"cache-control", b"no-store")], b"not serving\n"
)
MIN_SEQUENCE = b"x-idnode-min-sequence"  # read-your-writes: the sequence a write returned
ASSETS = frozenset({"/favicon.ico", "/robots.txt", "/apple-touch-icon.png"})


class HttpApp:
    """Serves the REST API, proxy resolution and the pages from one worker's caches."""

    def __init__(
        self,
        registry: Registry,
        follower: ChangeFollower,
        authenticator: Authenticator,
        resolve: Resolve,
        options: HttpOptions | None = None,
        referrals: ReferralFollower | None = None,
        replica: Replica | None = None,
        gate: SequenceGate | None = None,
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:
        self.options = options = options or HttpOptions()
        self._replica = replica  # set on a read replica: writes go to the primary (307)
        self._gate = gate or SequenceGate(follower, 0.0, replica=False)
        self._healthy = healthy
        self.cache = ResponseCache(follower, options)
        self._follower = follower
        self._store = registry.store  # proofs are read from it (?proof=true)
        self._resolve = resolve
        self._credentials = Credentials(registry, authenticator)
        self._writer = Writer(registry)
        self._referrals = referrals or ReferralFollower()
        self._pool = ThreadPoolExecutor(options.write_threads, thread_name_prefix="http-work")
        forever = [(b"cache-control", b"max-age=3600")]
        self._home = {
            lang: encoded(200, answers.HTML + forever, pages.lookup(lang)) for lang in pages.LABELS
        }
        self._resolutions = metrics.Tally(metrics.RESOLVE_REQUESTS)
        self._duration = metrics.LocalHistogram(metrics.RESOLVE_DURATION, ("http",))
        self._requests = metrics.Tally(metrics.HTTP_REQUESTS)
        metrics.on_flush(self._flush)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        try:
            response = self._hit(scope, method)
            if response is None:
                response = await self._route(scope, receive, method)
        except Exception:
            log.exception("HTTP request failed")
            response = INTERNAL
        await send(response.start)
        await send(response.body)
        self._requests.add((method if method in METHODS else "other",
                            STATUS_CLASSES[min(response.status // 100, 5)]))  # fmt: skip

    def _hit(self, scope: Scope, method: str) -> Encoded | None:
        """The hot path, without a coroutine: a cached answer to a plain GET, else None."""
        path: str = scope["path"]
        if path == "/healthz":
            return HEALTHY if self._healthy() else UNHEALTHY
        if (method != "GET" and method != "HEAD") or scope["query_string"]:
            return None
        if b"%" in scope["raw_path"]:
            return None
        return self.cached(path, scope["headers"])

    def cached(self, path: str, headers: list[tuple[bytes, bytes]]) -> Encoded | None:
        """The cached answer to a GET of `path` (no query, no percent-encoding) with
        `headers`, counted as a resolution; None when the full route must answer it
        (a miss, credentials, a prefix handle, a long path, the pages)."""
        started = time.perf_counter()
        accept = accept_language = b""
        for name, value in headers:
            if name == b"accept":
                accept = value
            elif name == b"accept-language":
                accept_language = value
            elif name == b"authorization" or name == MIN_SEQUENCE:
                return None
        if path.startswith(API_ITEM):
            identifier, variant = path[len(API_ITEM) :], "rest"
            if identifier[: len(PREFIX_HANDLE)].upper() == PREFIX_HANDLE:
                return None
        elif path.startswith(API) or path in ASSETS or path == "/" or path == "/healthz":
            return None
        else:
            identifier = path[1:]
            if b"application/json" in accept:
                variant = "rest"
            else:
                variant = "proxy-" + (pages.language(accept_language) if accept_language else "en")
        if len(identifier) > MAX_IDENTIFIER_BYTES // 4:
            return None
        key = cache_key(identifier)
        if key is None:
            return None
        self._follower.poll()
        hit = self.cache.get(key, variant)
        if hit is not None:
            self._count(hit, started)
        return hit

    def served(self, method: bytes, status: int) -> None:
        """Count a response the protocol wrote itself from `cached`."""
        self._requests.add((method.decode("latin-1"), STATUS_CLASSES[min(status // 100, 5)]))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._referrals.close()

    # Routes ------------------------------------------------------------------------

    async def _route(self, scope: Scope, receive: Receive, method: str) -> Encoded:
        path: str = scope["path"]
        api = path.startswith(API)
        try:
            if method == "GET" or method == "HEAD":
                if api:
                    return await self._rest_get(scope, path)
                if path == "/":
                    return self._lookup(scope)
                if path in ASSETS:
                    return NOTHING_HERE
                return await self._proxy(scope)
            if (method == "PUT" or method == "DELETE") and path.startswith(API_ITEM):
                return await self._rest_write(scope, receive, method)
            return NOT_ALLOWED
        except IdnodeError as error:
            if api:
                return answers.rest_error(error)
            return answers.page_error(error, "", _language(scope), "invalid")

    def _lookup(self, scope: Scope) -> Encoded:
        """`/` is the form; `/?id=X` (the form sent) shows X's values."""
        for key, value in _params(scope["query_string"]):
            if key == "id" and value.strip():
                target = "/" + quote(value.strip(), safe="/") + "?noredirect"
                return answers.redirect_to(target, 0, status=303)
        return self._home[_language(scope)]

    async def _proxy(self, scope: Scope) -> Encoded:
        """`/{identifier}`: redirect, page or JSON, from the cache when it can."""
        started = time.perf_counter()
        self._follower.poll()
        waited = await self._reach(scope)
        if waited is not None:
            return waited
        identifier = _identifier(scope, 1)
        accept, accept_language, _ = _headers(scope)
        if b"application/json" in accept:
            variant = "rest"
        else:
            lang = pages.language(accept_language) if accept_language else "en"
            query = scope["query_string"]
            variant = ("page-" if query and _flag(query, b"noredirect") else "proxy-") + lang
        response = await self._answer(identifier, variant)
        self._count(response, started)
        return response

    async def _rest_get(self, scope: Scope, path: str) -> Encoded:
        if path in (API, API_ITEM):
            return await self._list(scope)
        started = time.perf_counter()
        self._follower.poll()
        waited = await self._reach(scope)
        if waited is not None:
            return waited
        identifier = _identifier(scope, len(API_ITEM))
        _, _, authorization = _headers(scope)
        query = scope["query_string"]
        if identifier[: len(PREFIX_HANDLE)].upper() == PREFIX_HANDLE:
            response = self._credentials.prefix_record(identifier)
        elif not query and authorization is None:
            response = await self._answer(identifier, "rest")
        else:
            response = await self._rest_filtered(identifier, query, authorization, _source(scope))
        self._count(response, started)
        return response

    async def _reach(self, scope: Scope) -> Encoded | None:
        """Read-your-writes: None once this node holds the X-Idnode-Min-Sequence asked for
        (a replica behind waits off the event loop), else 503 with Retry-After."""
        wanted = _min_sequence(scope)
        if wanted <= self._follower.sequence:
            return None
        try:
            await self._run(self._gate.reach, wanted)
        except SequenceNotReached as error:
            return answers.not_reached(error)
        return None

    async def _rest_write(self, scope: Scope, receive: Receive, method: str) -> Encoded:
        if self._replica is not None:
            return answers.to_primary(self._replica.refusal(), scope)
        identifier = _identifier(scope, len(API_ITEM))
        params = _params(scope["query_string"])
        indexes = _indexes(params)
        overwrite = _value(params, "overwrite", "true").lower() != "false"
        try:
            caller = self._credentials.caller(_headers(scope)[2], _source(scope))
        except IdnodeError as error:
            return answers.rest_error(error, identifier)
        if method == "PUT":
            body = await self._body(receive)
            return await self._run(self._writer.put, caller, identifier, body, indexes, overwrite)
        return await self._run(self._writer.delete, caller, identifier, indexes)

    async def _list(self, scope: Scope) -> Encoded:
        params = _params(scope["query_string"])
        prefix = _value(params, "prefix", "")
        if not prefix:
            raise InvalidRequest("listing needs ?prefix=")
        page = _number(_value(params, "page", "0"), "page", 0, 10**6)
        size = _number(_value(params, "pageSize", str(DEFAULT_PAGE_SIZE)), "pageSize", 1, 1000)
        caller = self._credentials.caller(_headers(scope)[2], _source(scope))
        token = _value(params, "pageToken", "")
        return await self._run(self._writer.list, caller, prefix, page, size, token)

    # Resolution ----------------------------------------------------------------------

    async def _answer(self, identifier: str, variant: str) -> Encoded:
        """One look-up of finished bytes; a miss builds them and keeps them when the
        identifier could be one (anything else is answered, never cached)."""
        key = cache_key(identifier)
        hit = self.cache.get(key, variant) if key is not None else None
        if hit is not None:
            return hit
        generation = self._follower.generation
        answer = self._resolve(identifier)
        lang = "en" if variant == "rest" else variant[-2:]
        if answer.error is not None:
            if variant == "rest":
                response = answers.rest_error(answer.error, identifier, True, answer.result)
            else:
                response = answers.page_error(answer.error, identifier, lang, answer.result)
        elif answer.record is None:
            return await self._referral(identifier, variant, answer, b"")
        elif variant == "rest":
            response = answers.rest_record(answer.record.identifier, answers.public(answer.record))
        else:
            shown = answers.public(answer.record)
            redirect = variant.startswith("proxy")
            response = answers.proxy(answer.record.identifier, shown, lang, redirect)
        if answer.cacheable and key is not None:
            self.cache.fill(key, variant, response, generation, negative=answer.record is None)
        return response

    async def _rest_filtered(
        self, identifier: str, query: bytes, authorization: bytes | None, source: str
    ) -> Encoded:
        """GET with type=/index=/publicOnly= or credentials: built per request, not cached."""
        params = _params(query)
        types = [value for key, value in params if key == "type"]
        indexes = _indexes(params)
        public_only = _value(params, "publicOnly", "false").lower() == "true"
        try:
            caller = self._credentials.caller(authorization, source)
        except IdnodeError as error:  # the client's credential, not the node, failed
            return answers.rest_error(error, identifier, result="invalid")
        answer = self._resolve(identifier)
        if answer.error is not None:
            return answers.rest_error(answer.error, identifier, True, answer.result)
        if answer.record is None:
            return await self._referral(identifier, "rest", answer, query)
        restricted = not public_only and accounts.may_write(caller, answer.owner)
        if _value(params, "proof", "false").lower() == "true":
            key = answer.record.identifier
            return await self._run(proven, self._store, key, types, indexes, restricted)
        shown = select(answer.record.values, types, indexes, restricted)
        if (types or indexes) and not shown:
            missing = values.none_matching(identifier, types, indexes)
            return answers.rest_error(missing, answer.record.identifier, True, "ok")
        return answers.rest_record(answer.record.identifier, shown)

    async def _referral(
        self, identifier: str, variant: str, answer: Answer, query: bytes
    ) -> Encoded:
        """Redirect to the serving node's HTTP site, else ask its gRPC face ourselves."""
        reply = resolver_pb2.ResolveResponse.FromString(answer.public_bytes)
        base = answers.http_site(reply)
        lang = "en" if variant == "rest" else variant[-2:]
        if base:
            path = ("/api/handles/" if variant == "rest" else "/") + quote(identifier, safe="/")
            if query:
                path += "?" + query.decode("latin-1")
            elif variant.startswith("page"):
                path += "?noredirect"
            location = base + quote(path, safe=answers.URL_SAFE)
            redirect = answers.redirect_to(location, reply.referral.ttl or 60)
            return dataclasses.replace(redirect, result="referral")
        request = resolver_pb2.ResolveRequest(identifier=identifier)
        try:
            followed = await self._run(self._referrals.follow, request, reply)
        except IdnodeError as error:
            if variant == "rest":
                return answers.rest_error(error, identifier, True, "referral")
            return answers.page_error(error, identifier, lang, "referral")
        shown = [v for v in followed.values if values.is_public(v)]
        if variant == "rest":
            return answers.rest_record(followed.identifier, shown, result="referral")
        response = answers.proxy(followed.identifier, shown, lang, variant.startswith("proxy"))
        return dataclasses.replace(response, result="referral")

    # Plumbing ------------------------------------------------------------------------

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        """Blocking work (a durable write, a gRPC call) on the pool, not the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args))

    async def _body(self, receive: Receive) -> bytes:
        """The request body, refused past max_body_bytes before it is all read."""
        limit = self.options.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvalidRequest("the client went away before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"request body is larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _count(self, response: Encoded, started: float) -> None:
        self._resolutions.add(("http", response.result or "error"))
        self._duration.observe(time.perf_counter() - started)

    def _flush(self) -> None:
        self._resolutions.flush()
        self._duration.flush()
        self._requests.flush()
        cache = self.cache.answers
        requests, hits = cache.requests, cache.hits
        cache.requests = cache.hits = 0
        metrics.CACHE_REQUESTS.labels("http").inc(requests)
        metrics.CACHE_HITS.labels("http").inc(hits)
        metrics.CACHE_ENTRIES.labels("http").set(len(cache))


def _identifier(scope: Scope, start: int) -> str:
    """The identifier in the path, percent-decoded once as UTF-8, refused past 255 bytes
    before any other work. Raises InvalidIdentifier."""
    text: str = scope["path"][start:]
    if len(text) > MAX_IDENTIFIER_BYTES or (
        len(text) > MAX_IDENTIFIER_BYTES // 4 and len(text.encode("utf-8", "replace")) > 255
    ):
        raise InvalidIdentifier(
            f"identifier {excerpt(text)} is longer than {MAX_IDENTIFIER_BYTES} bytes"
        )
    raw: bytes = scope.get("raw_path", b"")
    if b"%" in raw:  # the server decoded leniently (bad UTF-8 becomes U+FFFD): decode strictly
        try:
            text = unquote_to_bytes(raw[start:]).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidIdentifier(
                f"identifier {excerpt(text)} is not valid UTF-8 once percent-decoded"
            ) from None
    if not text:
        raise InvalidIdentifier("no identifier in the path")
    return text


def _headers(scope: Scope) -> tuple[bytes, bytes, bytes | None]:
    """Accept, Accept-Language and Authorization (the server lower-cased the names)."""
    accept = language = b""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"accept":
            accept = value
        elif name == b"accept-language":
            language = value
        elif name == b"authorization":
            authorization = value
    return accept, language, authorization


def _min_sequence(scope: Scope) -> int:
    """The X-Idnode-Min-Sequence header's value, 0 without it. Raises InvalidRequest."""
    for name, value in scope["headers"]:
        if name == MIN_SEQUENCE:
            return parse_min_sequence(value.decode("latin-1"))
    return 0


def _source(scope: Scope) -> str:
    """The client's address, for counting and slowing failed authentications."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def _language(scope: Scope) -> str:
    accept_language = _headers(scope)[1]
    return pages.language(accept_language) if accept_language else "en"


def _params(query: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            query.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS,
            encoding="utf-8", errors="strict",
        )  # fmt: skip
    except ValueError as error:
        raise InvalidRequest(f"query string: {str(error)[:80]}") from None


def _flag(query: bytes, name: bytes) -> bool:
    return any(part.partition(b"=")[0] == name for part in query.split(b"&"))


def _value(params: list[tuple[str, str]], key: str, default: str) -> str:
    for name, value in params:
        if name == key:
            return value
    return default


def _indexes(params: list[tuple[str, str]]) -> list[int]:
    return [_number(value, "index", 1, 2**31 - 1) for key, value in params if key == "index"]


def _number(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or len(text) > 10 or not low <= int(text) <= high:
        raise InvalidRequest(f"{what} must be a number from {low} to {high}, not {excerpt(text)}")
    return int(text)
