"""The Resolver service: the hot path, answered from a cache of serialised responses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

import metrics
from proto import handle_pb2, resolver_pb2
from registry import accounts, values
from registry.accounts import Account
from registry.errors import (
    HandleNotFound,
    IdnodeError,
    InvalidIdentifier,
    InvalidRequest,
    NotResponsible,
    Referred,
    TooLarge,
    ValueNotFound,
)
from registry.identifier import parse
from registry.registry import Referral, Registry
from resolver.cache import AnswerCache
from resolver.follow import ChangeFollower
from resolver.grpc_auth import Authenticator, bearer_token
from resolver.grpc_errors import RpcFailure, status_of
from resolver.grpc_follow import ReferralFollower

log = logging.getLogger(__name__)

MAX_BATCH_RESOLVE = 1000
SUCCESS = 1

Referrer = Callable[[str], Referral | None]
"""Where a prefix outside this node lives (asks the top-level node); None: unknown."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer for one identifier; never mutated once cached."""

    record: handle_pb2.Record | None  # stored record, when found here
    owner: str  # account owning the record's prefix ("" when there is no record)
    public_bytes: bytes  # serialised ResolveResponse an anonymous caller gets
    error: IdnodeError | None  # the failure to report instead
    result: str  # metrics label
    cacheable: bool = True  # False: the referrer caches it, by the upstream's TTL


class ResolverService:
    """Resolve and BatchResolve over the registry, with a per-process answer cache."""

    def __init__(
        self,
        registry: Registry,
        follower: ChangeFollower,
        authenticator: Authenticator,
        cache_entries: int,
        negative_cache_entries: int,
        referrer: Referrer | None = None,
    ) -> None:
        self._registry = registry
        self._follower = follower
        self._auth = authenticator
        self._referrer = referrer
        self.cache: AnswerCache[str, Answer] = AnswerCache(cache_entries, negative_cache_entries)
        self._referrals = ReferralFollower()
        follower.subscribe(self._invalidate)
        self._requests = metrics.Tally(metrics.RESOLVE_REQUESTS)
        self._duration = metrics.LocalHistogram(metrics.RESOLVE_DURATION, ("grpc",))
        metrics.on_flush(self._flush)

    # Handlers (request in, serialised response out) --------------------------

    def resolve(self, request: resolver_pb2.ResolveRequest, context: grpc.ServicerContext) -> bytes:
        started = time.perf_counter()
        self._follower.poll()
        answer = self.answer(request.identifier)
        self._requests.add(("grpc", answer.result))
        try:
            if answer.error is not None:
                raise RpcFailure(status_of(answer.error), str(answer.error))
            if answer.record is None:  # a referral
                if request.recursive:
                    return self._follow(request, answer).SerializeToString()
                return answer.public_bytes
            token = bearer_token(context)
            if request.types or request.indexes or token is not None:
                caller = self._auth.account(token)
                return self._tailored(request, answer, caller).SerializeToString()
            return answer.public_bytes
        finally:
            self._duration.observe(time.perf_counter() - started)

    def batch_resolve(
        self, request: resolver_pb2.BatchResolveRequest, context: grpc.ServicerContext
    ) -> resolver_pb2.BatchResolveResponse:
        if len(request.requests) > MAX_BATCH_RESOLVE:
            raise TooLarge(
                f"batch has {len(request.requests)} identifiers, more than {MAX_BATCH_RESOLVE}"
            )
        started = time.perf_counter()
        self._follower.poll()
        caller = self._auth.caller(context)
        reply = resolver_pb2.BatchResolveResponse()
        try:
            for item in request.requests:
                answer = self.answer(item.identifier)
                self._requests.add(("grpc", answer.result))
                result = reply.results.add()
                # A cached error is reported, never raised: raising the same instance
                # again and again would chain its tracebacks.
                failure = answer.error
                if failure is None:
                    try:
                        result.response.CopyFrom(self._one_of_batch(item, answer, caller))
                    except IdnodeError as error:
                        failure = error
                if failure is not None:
                    result.status = status_of(failure).value[0]
                    result.error = str(failure)
        finally:
            self._duration.observe(time.perf_counter() - started)
        return reply

    def _one_of_batch(
        self, item: resolver_pb2.ResolveRequest, answer: Answer, caller: Account | None
    ) -> resolver_pb2.ResolveResponse:
        if answer.record is None and item.recursive:
            return self._follow(item, answer)
        if answer.record is None or not (item.types or item.indexes or caller):
            return resolver_pb2.ResolveResponse.FromString(answer.public_bytes)
        return self._tailored(item, answer, caller)

    # Answers ------------------------------------------------------------------

    def answer(self, identifier: str) -> Answer:
        """The cached answer for `identifier`; a miss computes it and caches it unless it
        is uncacheable or a change landed while it was being computed."""
        slash = identifier.find("/")
        key = identifier[:slash].lower() + identifier[slash:] if slash > 0 else identifier
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        generation = self._follower.generation
        answer = self._compute(identifier)
        if not answer.cacheable:
            return answer
        with self._follower.lock:
            if self._follower.generation == generation:
                self.cache.put(key, answer, negative=answer.record is None)
        return answer

    def _compute(self, identifier: str) -> Answer:
        try:
            parsed = parse(identifier)
        except IdnodeError as error:
            return Answer(None, "", b"", error, _result_label(error))
        try:
            record, owner = self._registry.locate(parsed)
        except Referred as referred:
            assert isinstance(referred.referral, Referral)
            return _referral_answer(identifier, referred.referral)
        except NotResponsible as error:
            if self._referrer is None:
                return Answer(None, "", b"", error, "not_responsible")
            # The referrer caches the upstream's answers by their TTL; this cache must not
            # keep them longer (only local changes invalidate it).
            referral = self._referrer(parsed.prefix)
            if referral is None:
                return Answer(None, "", b"", error, "not_responsible", cacheable=False)
            return _referral_answer(identifier, referral, cacheable=False)
        except IdnodeError as error:
            return Answer(None, "", b"", error, _result_label(error))
        response = resolver_pb2.ResolveResponse(identifier=record.identifier, code=SUCCESS)
        response.values.extend(v for v in record.values if values.is_public(v))
        return Answer(record, owner, response.SerializeToString(), None, "ok")

    @staticmethod
    def _tailored(
        request: resolver_pb2.ResolveRequest, answer: Answer, caller: Account | None
    ) -> resolver_pb2.ResolveResponse:
        """A found record filtered by type and index, with restricted values for those allowed.

        Raises ValueNotFound when a filter matches nothing."""
        assert answer.record is not None
        selected = values.select(
            answer.record.values,
            request.types,
            request.indexes,
            include_restricted=accounts.may_write(caller, answer.owner),
        )
        if (request.types or request.indexes) and not selected:
            raise_values_not_found(request)
        response = resolver_pb2.ResolveResponse(identifier=answer.record.identifier, code=SUCCESS)
        response.values.extend(selected)
        return response

    def _follow(
        self, request: resolver_pb2.ResolveRequest, answer: Answer
    ) -> resolver_pb2.ResolveResponse:
        return self._referrals.follow(
            request, resolver_pb2.ResolveResponse.FromString(answer.public_bytes)
        )

    def _invalidate(self, entry: handle_pb2.ChangeEntry | None) -> None:
        if entry is None or entry.operation == handle_pb2.ChangeEntry.PREFIX_PUT:
            self.cache.clear()
        else:
            self.cache.invalidate(entry.identifier)

    def _flush(self) -> None:
        self._requests.flush()
        self._duration.flush()
        requests, hits = self.cache.requests, self.cache.hits
        self.cache.requests = self.cache.hits = 0
        metrics.CACHE_REQUESTS.labels("grpc").inc(requests)
        metrics.CACHE_HITS.labels("grpc").inc(hits)
        metrics.CACHE_ENTRIES.labels("grpc").set(len(self.cache))


def raise_values_not_found(request: resolver_pb2.ResolveRequest) -> None:
    wanted = [*request.types, *map(str, request.indexes)]
    raise ValueNotFound(f"identifier {request.identifier} has no value matching {wanted}")


def _referral_answer(identifier: str, referral: Referral, cacheable: bool = True) -> Answer:
    response = resolver_pb2.ResolveResponse(identifier=identifier, code=referral.code)
    response.referral.code = referral.code
    response.referral.prefix = referral.prefix
    response.referral.sites.extend(referral.sites)
    response.referral.ttl = referral.ttl_seconds
    return Answer(None, "", response.SerializeToString(), None, "referral", cacheable)


_RESULT_LABELS: dict[type[IdnodeError], str] = {
    HandleNotFound: "not_found",
    InvalidIdentifier: "invalid",
    InvalidRequest: "invalid",
}


def _result_label(error: IdnodeError) -> str:
    return _RESULT_LABELS.get(type(error), "error")
