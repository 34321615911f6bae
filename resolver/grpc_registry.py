"""The Registry service: thin handlers, protobuf in, domain call, protobuf out."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import grpc

import metrics
from proto import handle_pb2, registry_pb2
from registry import audit, credentials, enterprises
from registry.accounts import Account
from registry.errors import AuthenticationRequired, IdnodeError
from registry.registry import DEFAULT_PAGE_BYTES, Registry, WriteResult
from resolver.grpc_auth import Authenticator
from resolver.readonly import Replica

_Call = Callable[[Account | None], WriteResult]
log = logging.getLogger("idnode.registry")

_OUTCOMES = {
    "created": registry_pb2.BatchItemResult.CREATED,
    "updated": registry_pb2.BatchItemResult.UPDATED,
    "unchanged": registry_pb2.BatchItemResult.UNCHANGED,
    "rejected": registry_pb2.BatchItemResult.REJECTED,
}


def _item_bytes(outcome: str, error: str) -> bytes:
    """One item of BatchRegisterResponse.results as it is serialised in the reply."""
    item = registry_pb2.BatchItemResult(outcome=_OUTCOMES[outcome], error=error)
    return registry_pb2.BatchRegisterResponse(results=[item]).SerializeToString()


_ACCEPTED_ITEMS = {outcome: _item_bytes(outcome, "") for outcome in _OUTCOMES}


class RegistryService:
    """Each handler authenticates the caller, calls the registry, and counts the result."""

    def __init__(
        self,
        registry: Registry,
        authenticator: Authenticator,
        list_page_bytes: int = DEFAULT_PAGE_BYTES,
        replica: Replica | None = None,
    ) -> None:
        self._registry = registry
        self._auth = authenticator
        self._replica = replica  # set on a read replica: every write is refused
        self._list_page_bytes = list_page_bytes
        self._counts = metrics.Tally(metrics.REGISTRATIONS)
        metrics.on_flush(self._counts.flush)

    def create(
        self, request: handle_pb2.Record, context: grpc.ServicerContext
    ) -> registry_pb2.WriteResponse:
        return self._write("create", context, lambda caller: self._registry.create(
            caller, request.identifier, request.values))  # fmt: skip

    def add_values(
        self, request: handle_pb2.Record, context: grpc.ServicerContext
    ) -> registry_pb2.WriteResponse:
        return self._write("add_values", context, lambda caller: self._registry.add_values(
            caller, request.identifier, request.values))  # fmt: skip

    def modify_values(
        self, request: handle_pb2.Record, context: grpc.ServicerContext
    ) -> registry_pb2.WriteResponse:
        return self._write("modify_values", context, lambda caller: self._registry.modify_values(
            caller, request.identifier, request.values))  # fmt: skip

    def remove_values(
        self, request: registry_pb2.RemoveValuesRequest, context: grpc.ServicerContext
    ) -> registry_pb2.WriteResponse:
        return self._write("remove_values", context, lambda caller: self._registry.remove_values(
            caller, request.identifier, list(request.indexes)))  # fmt: skip

    def delete(
        self, request: registry_pb2.DeleteRequest, context: grpc.ServicerContext
    ) -> registry_pb2.WriteResponse:
        return self._write("delete", context, lambda caller: self._registry.delete(
            caller, request.identifier))  # fmt: skip

    def batch_register(
        self, request: registry_pb2.BatchRegisterRequest, context: grpc.ServicerContext
    ) -> bytes:
        """A BatchRegisterResponse, serialised."""
        self._refuse_on_replica(context)
        try:
            result = self._registry.batch_register(self._auth.caller(context), request.records)
        except IdnodeError:
            self._counts.add(("batch_register", "error"))
            raise
        for outcome in ("created", "updated", "unchanged", "rejected"):
            count = getattr(result, outcome)
            if count:
                self._counts.add(("batch_register", outcome), count)
        counts = registry_pb2.BatchRegisterResponse(
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
            sequence=result.sequence,
        )
        # The reply serialised here, one item result at a time: repeated fields may
        # follow the rest as bytes, and an accepted item's bytes are always the same
        # (a message per item cost half a microsecond each, in batches of thousands).
        items = [
            _ACCEPTED_ITEMS[outcome] if not error else _item_bytes(outcome, error)
            for outcome, error in zip(result.outcomes, result.errors, strict=True)
        ]
        return counts.SerializeToString() + b"".join(items)

    def list(
        self, request: registry_pb2.ListRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListResponse:
        records, token = self._registry.list(
            self._auth.caller(context),
            request.prefix,
            request.page_size,
            request.page_token,
            max_page_bytes=self._list_page_bytes,
        )
        return registry_pb2.ListResponse(records=records, next_page_token=token)

    def create_enterprise(
        self, request: registry_pb2.CreateEnterpriseRequest, context: grpc.ServicerContext
    ) -> registry_pb2.CreateEnterpriseResponse:
        self._refuse_on_replica(context)
        caller = self._auth.caller(context)
        created = self._registry.create_enterprise(
            caller,
            code=request.code,
            name=request.name,
            contact=request.contact,
            parent=request.parent_prefix,
            expires_in_seconds=request.expires_in_seconds,
        )
        self._counts.add(("create_enterprise", "ok"))
        audit.record(
            "enterprise.create", _name(caller), account=created.account, prefix=created.prefix,
            enterprise=request.name, expires_in_seconds=request.expires_in_seconds,
            source=context.peer(),
        )  # fmt: skip
        return registry_pb2.CreateEnterpriseResponse(
            prefix=created.prefix, account=created.account, token=created.token
        )

    def put_prefix(
        self, request: registry_pb2.PutPrefixRequest, context: grpc.ServicerContext
    ) -> handle_pb2.PrefixInfo:
        self._refuse_on_replica(context)
        caller = self._auth.caller(context)
        info = self._registry.put_prefix(caller, request.prefix, request.sites)
        audit.record(
            "prefix.put", _name(caller), prefix=info.prefix, owner=info.owner,
            sites=",".join(s.grpc_address for s in info.sites), source=context.peer(),
        )  # fmt: skip
        return info

    def who_am_i(
        self, request: registry_pb2.WhoAmIRequest, context: grpc.ServicerContext
    ) -> handle_pb2.Account:
        caller = self._auth.caller(context)
        if caller is None:
            raise AuthenticationRequired("no bearer token was sent")
        return credentials.public(caller)

    def list_accounts(
        self, request: registry_pb2.ListAccountsRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListAccountsResponse:
        found, token = enterprises.list_accounts(
            self._registry.store, self._auth.caller(context), request.page_size, request.page_token
        )
        return registry_pb2.ListAccountsResponse(accounts=found, next_page_token=token)

    def rotate_token(
        self, request: registry_pb2.RotateTokenRequest, context: grpc.ServicerContext
    ) -> registry_pb2.RotateTokenResponse:
        self._refuse_on_replica(context)
        caller = self._auth.caller(context)
        rotated = credentials.rotate(
            self._registry.store, caller, request.account, request.grace_seconds,
            request.expires_in_seconds,
        )  # fmt: skip
        audit.record(
            "token.rotate", _name(caller), account=rotated.account,
            credential_id=rotated.credential.id, grace_seconds=request.grace_seconds,
            old_valid_until=rotated.old_valid_until, expires=rotated.credential.expires,
            source=context.peer(),
        )  # fmt: skip
        return registry_pb2.RotateTokenResponse(
            account=rotated.account,
            token=rotated.token,
            credential=rotated.credential,
            old_valid_until=rotated.old_valid_until,
        )

    def revoke_token(
        self, request: registry_pb2.RevokeTokenRequest, context: grpc.ServicerContext
    ) -> registry_pb2.RevokeTokenResponse:
        self._refuse_on_replica(context)
        caller = self._auth.caller(context)
        account = request.account or _name(caller)
        revoked = credentials.revoke(
            self._registry.store, caller, request.account, request.credential_id
        )
        audit.record(
            "token.revoke", _name(caller), account=account, credential_ids=",".join(revoked),
            source=context.peer(),
        )  # fmt: skip
        return registry_pb2.RevokeTokenResponse(account=account, revoked=revoked)

    def list_enterprises(
        self, request: registry_pb2.ListEnterprisesRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListEnterprisesResponse:
        found, token = enterprises.list_enterprises(
            self._registry.store, self._auth.caller(context), request.page_size, request.page_token
        )
        return registry_pb2.ListEnterprisesResponse(enterprises=found, next_page_token=token)

    def _write(
        self, op: str, context: grpc.ServicerContext, call: _Call
    ) -> registry_pb2.WriteResponse:
        self._refuse_on_replica(context)
        try:
            result = call(self._auth.caller(context))
        except IdnodeError as error:
            self._counts.add((op, error_label(error)))
            raise
        self._counts.add((op, "ok"))
        return _write_response(result)

    def _refuse_on_replica(self, context: grpc.ServicerContext) -> None:
        """A replica refuses every write with FAILED_PRECONDITION naming its primary, also in
        trailing metadata (`idnode-primary`) for clients that redirect by themselves."""
        if self._replica is None:
            return
        refusal = self._replica.refusal()
        context.set_trailing_metadata((("idnode-primary", refusal.primary),))
        raise refusal


def _write_response(result: WriteResult) -> registry_pb2.WriteResponse:
    return registry_pb2.WriteResponse(
        identifier=result.identifier,
        operation=result.operation,
        sequence=result.sequence,
        values=result.values,
    )


def error_label(error: IdnodeError) -> str:
    """A bounded metrics label for an error: its class name in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def _name(caller: Account | None) -> str:
    return caller.name if caller is not None else "anonymous"
