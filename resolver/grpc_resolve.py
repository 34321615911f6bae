"""The Resolver service: the hot path, answered from a cache of serialised responses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc

import metrics
from proto import handle_pb2, resolver_pb2
from registry import accounts, proofs, values
from registry.accounts import Account
from registry.errors import (
    HandleNotFound,
    IdnodeError,
    InvalidIdentifier,
    InvalidRequest,
    NotResponsible,
    Referred,
)
from registry.identifier import cache_key, is_under, parse
from registry.registry import Referral, Registry
from resolver import batch
from resolver.cache import AnswerCache
from resolver.follow import ChangeFollower
from resolver.grpc_auth import Authenticator
from resolver.grpc_errors import RpcFailure, status_of
from resolver.grpc_follow import ReferralFollower
from resolver.readonly import SequenceGate

log = logging.getLogger(__name__)

SUCCESS = 1
DEFAULT_CACHE_BYTES = 256 << 20
DEFAULT_NEGATIVE_CACHE_BYTES = 32 << 20
DEFAULT_MAX_RESPONSE_BYTES = 32 << 20  # the gRPC message limit (grpc_max_message_bytes)

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
    prefix: str = ""  # the identifier's canonical prefix: a change under it drops the answer

    def size_bytes(self) -> int:
        """About what this answer holds in memory, for the cache's byte bounds."""
        size = 200 + len(self.public_bytes) + len(self.owner)
        if self.record is not None:
            size += self.record.ByteSize()
        if self.error is not None:
            size += len(str(self.error))
        return size


class ResolverService:
    """Resolve and BatchResolve over the registry, with a per-process answer cache.

    Calls are timed once, by the gRPC metrics interceptor, whose handling time of these
    two methods also makes `idnode_resolve_duration_seconds{proto="grpc"}`
    (resolver.grpc_server.resolution_timing)."""

    def __init__(
        self,
        registry: Registry,
        follower: ChangeFollower,
        authenticator: Authenticator,
        cache_entries: int,
        negative_cache_entries: int,
        referrer: Referrer | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        negative_cache_bytes: int = DEFAULT_NEGATIVE_CACHE_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        referrals: ReferralFollower | None = None,
        gate: SequenceGate | None = None,
    ) -> None:
        self._registry = registry
        self._follower = follower
        self._auth = authenticator
        self._referrer = referrer
        self.cache: AnswerCache[str, Answer] = AnswerCache(
            cache_entries, negative_cache_entries, cache_bytes, negative_cache_bytes
        )
        self._referrals = referrals or ReferralFollower()
        self._gate = gate or SequenceGate(follower, 0.0, replica=False)
        self._budget = batch.ReplyBudget(max_response_bytes)
        follower.subscribe(self._invalidate)
        self._limits = metrics.Tally(metrics.LIMIT_HITS)
        self._requests = metrics.Tally(metrics.RESOLVE_REQUESTS)
        metrics.on_flush(self._flush)

    # Handlers (request in, serialised response out) --------------------------

    def resolve(self, request: resolver_pb2.ResolveRequest, context: grpc.ServicerContext) -> bytes:
        self._follower.poll()
        if request.min_sequence > self._follower.sequence:
            self._reach(request.min_sequence, context)
        answer = self.answer(request.identifier)
        self._requests.add(("grpc", answer.result))
        if answer.error is not None:
            raise RpcFailure(status_of(answer.error), str(answer.error))
        if answer.record is None:  # a referral
            if request.recursive:
                deadline = self._referrals.deadline()
                return self._follow(request, answer, deadline).SerializeToString()
            return answer.public_bytes
        caller = self._auth.caller(context)
        if request.proof:
            return self._proven(request, answer, caller).SerializeToString()
        if request.types or request.indexes or caller is not None:
            return self._tailored(request, answer, caller).SerializeToString()
        return answer.public_bytes

    def batch_resolve(
        self, request: resolver_pb2.BatchResolveRequest, context: grpc.ServicerContext
    ) -> resolver_pb2.BatchResolveResponse:
        """One result per identifier, in order. Entries stop being answered where the reply
        would outgrow the message limit: those left are marked RESOURCE_EXHAUSTED
        (resolver.batch.ReplyBudget). Raises TooLarge past MAX_BATCH_RESOLVE identifiers."""
        batch.check_count(request)
        self._follower.poll()
        wanted = max((item.min_sequence for item in request.requests), default=0)
        wanted = max(wanted, request.min_sequence)
        if wanted > self._follower.sequence:
            self._reach(wanted, context)
        caller = self._auth.caller(context)
        deadline = self._referrals.deadline()  # one for every recursive item together
        reply = resolver_pb2.BatchResolveResponse()
        if not self._budget.fill(
            reply,
            request.requests,
            lambda item, result: self._one_of_batch(item, caller, deadline, result),
        ):
            self._limits.add(("batch_response_bytes",))
        return reply

    def _one_of_batch(
        self,
        item: resolver_pb2.ResolveRequest,
        caller: Account | None,
        deadline: float,
        result: resolver_pb2.BatchResolveResult,
    ) -> int:
        """Fill `result` for one item; returns the bytes it adds to the reply.

        A failure is reported in the result, never raised: raising a cached error
        again and again would chain its tracebacks."""
        answer = self.answer(item.identifier)
        self._requests.add(("grpc", answer.result))
        failure = answer.error
        if failure is None:
            try:
                if answer.record is None and item.recursive:
                    result.response.CopyFrom(self._follow(item, answer, deadline))
                elif answer.record is not None and item.proof:
                    result.response.CopyFrom(self._proven(item, answer, caller))
                elif answer.record is None or not (item.types or item.indexes or caller):
                    result.response.MergeFromString(answer.public_bytes)
                    return batch.entry_bytes(batch.entry_bytes(len(answer.public_bytes)))
                else:
                    result.response.CopyFrom(self._tailored(item, answer, caller))
            except IdnodeError as error:
                failure = error
        if failure is not None:
            result.Clear()
            result.status = status_of(failure).value[0]
            result.error = str(failure)
        return batch.entry_bytes(result.ByteSize())

    def _reach(self, min_sequence: int, context: grpc.ServicerContext) -> None:
        """Read-your-writes: wait (bounded, within the call's deadline) for `min_sequence`."""
        remaining = context.time_remaining()
        self._gate.reach(min_sequence, None if remaining is None else remaining - 0.05)

    # Answers ------------------------------------------------------------------

    def answer(self, identifier: str) -> Answer:
        """The cached answer for `identifier`; a miss computes it and caches it unless it
        is uncacheable or a change landed while it was being computed.

        The cache is keyed on the canonical form only, and an input that cannot be an
        identifier (too long, no '/', a non-ASCII prefix) is refused before the cache is
        looked at; invalid identifiers are never cached."""
        key = cache_key(identifier)
        if key is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        generation = self._follower.generation
        answer = self._compute(identifier)
        if not answer.cacheable:
            return answer
        assert key is not None  # whatever parses has a key
        with self._follower.lock:
            if self._follower.generation == generation:
                self.cache.put(
                    key,
                    answer,
                    answer.size_bytes(),
                    negative=answer.record is None,
                    group=answer.prefix,
                )
        return answer

    def _compute(self, identifier: str) -> Answer:
        try:
            parsed = parse(identifier)
        except IdnodeError as error:
            return Answer(None, "", b"", error, _result_label(error), cacheable=False)
        prefix = parsed.prefix
        try:
            record, owner = self._registry.locate(parsed)
        except Referred as referred:
            assert isinstance(referred.referral, Referral)
            return _referral_answer(str(parsed), referred.referral, prefix=prefix)
        except NotResponsible as error:
            if self._referrer is None:
                return Answer(None, "", b"", _detached(error), "not_responsible", prefix=prefix)
            # The referrer caches the upstream's answers by their TTL; this cache must not
            # keep them longer (only local changes invalidate it).
            referral = self._referrer(prefix)
            if referral is None:
                return Answer(None, "", b"", error, "not_responsible", cacheable=False)
            return _referral_answer(str(parsed), referral, cacheable=False)
        except IdnodeError as error:
            return Answer(None, "", b"", _detached(error), _result_label(error), prefix=prefix)
        response = resolver_pb2.ResolveResponse(identifier=record.identifier, code=SUCCESS)
        response.values.extend(v for v in record.values if values.is_public(v))
        return Answer(record, owner, response.SerializeToString(), None, "ok", prefix=prefix)

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
            raise values.none_matching(request.identifier, request.types, request.indexes)
        response = resolver_pb2.ResolveResponse(identifier=answer.record.identifier, code=SUCCESS)
        response.values.extend(selected)
        return response

    def _proven(
        self, request: resolver_pb2.ResolveRequest, answer: Answer, caller: Account | None
    ) -> resolver_pb2.ResolveResponse:
        """The record as its signed change wrote it, with that change's proof (off the
        cache: one read of the store, registry.proofs). Raises ProofNotReady,
        ProofUnavailable, ValueNotFound."""
        assert answer.record is not None
        restricted = accounts.may_write(caller, answer.owner)
        key = answer.record.identifier
        proof = proofs.prove_readable(self._registry.store, key, restricted)
        signed = proof.entry.record.values
        selected = values.select(signed, request.types, request.indexes, restricted)
        if (request.types or request.indexes) and not selected:
            raise values.none_matching(request.identifier, request.types, request.indexes)
        response = resolver_pb2.ResolveResponse(identifier=key, code=SUCCESS, proof=proof)
        response.values.extend(selected)
        return response

    def _follow(
        self, request: resolver_pb2.ResolveRequest, answer: Answer, deadline: float
    ) -> resolver_pb2.ResolveResponse:
        return self._referrals.follow(
            request, resolver_pb2.ResolveResponse.FromString(answer.public_bytes), deadline
        )

    def _invalidate(self, entry: handle_pb2.ChangeEntry | None) -> None:
        """Drop what a change touches: a record's answer, or every answer under a prefix
        that was created or delegated (its home, owner or referral may have changed)."""
        if entry is None:
            self.cache.clear()
        elif entry.operation == handle_pb2.ChangeEntry.ACCOUNT_PUT:
            return  # a credential changed: no answer did
        elif entry.operation == handle_pb2.ChangeEntry.PREFIX_PUT:
            changed = entry.identifier
            self.cache.invalidate_groups(lambda prefix: is_under(prefix, changed))
        else:
            self.cache.invalidate(entry.identifier)

    def _flush(self) -> None:
        self._limits.flush()
        self._requests.flush()
        requests, hits = self.cache.requests, self.cache.hits
        self.cache.requests = self.cache.hits = 0
        metrics.CACHE_REQUESTS.labels("grpc").inc(requests)
        metrics.CACHE_HITS.labels("grpc").inc(hits)
        metrics.CACHE_ENTRIES.labels("grpc").set(len(self.cache))
        metrics.CACHE_BYTES.labels("grpc").set(self.cache.bytes_used)


def _referral_answer(
    identifier: str, referral: Referral, cacheable: bool = True, prefix: str = ""
) -> Answer:
    response = resolver_pb2.ResolveResponse(identifier=identifier, code=referral.code)
    response.referral.code = referral.code
    response.referral.prefix = referral.prefix
    response.referral.sites.extend(referral.sites)
    response.referral.ttl = referral.ttl_seconds
    return Answer(None, "", response.SerializeToString(), None, "referral", cacheable, prefix)


def _detached(error: IdnodeError) -> IdnodeError:
    """`error` without its traceback, to be cached: the frames it holds would keep their
    LMDB read transactions, and each of those a reader slot, alive as long as the entry."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error


_RESULT_LABELS: dict[type[IdnodeError], str] = {
    HandleNotFound: "not_found",
    InvalidIdentifier: "invalid",
    InvalidRequest: "invalid",
}


def _result_label(error: IdnodeError) -> str:
    return _RESULT_LABELS.get(type(error), "error")
