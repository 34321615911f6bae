"""Handle REST API writes, listing, prefix handles and credentials (blocking; run off the loop)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from urllib.parse import unquote

import metrics
from proto import handle_pb2
from registry import accounts, nodekey, values
from registry.accounts import Account
from registry.errors import (
    AuthenticationFailed,
    HandleNotFound,
    IdnodeError,
    InvalidRequest,
)
from registry.identifier import parse_prefix
from registry.nodekey import PREFIX_HANDLE
from registry.registry import Registry
from resolver.auth import Authenticator
from resolver.http import answers, formats
from resolver.http.cache import Encoded, encoded

ADMIN_INDEX = 100
ADMIN_PERMISSIONS = "111111111111"
MAX_LISTED = 100_000  # page * pageSize beyond this: use pageToken instead


class Credentials:
    """HTTP `Authorization` to an account: Bearer TOKEN, or Basic with user INDEX:HANDLE."""

    def __init__(self, registry: Registry, authenticator: Authenticator) -> None:
        self._registry = registry
        self._auth = authenticator

    def caller(self, authorization: bytes | None, source: str = "") -> Account | None:
        """The account (None without the header), for a request from address `source`.

        Raises AuthenticationFailed, counted and rate-limited per source like gRPC's."""
        if authorization is None:
            return None
        scheme, _, rest = authorization.partition(b" ")
        scheme = scheme.lower()
        try:
            if scheme == b"bearer" and rest.strip():
                token = rest.strip().decode("latin-1")
                user = None
            elif scheme == b"basic":
                user, token = _basic(rest.strip())
            else:
                raise AuthenticationFailed("Authorization must be 'Bearer <token>' or 'Basic …'")
        except AuthenticationFailed as error:
            raise self._auth.failed(source, "malformed", error) from None
        account = self._auth.account(token, source)
        assert account is not None
        if user is not None and self.account_name(user) != account.name:
            refused = AuthenticationFailed(
                f"user {formats.excerpt(user)} does not match the credential's account"
            )
            raise self._auth.failed(source, "invalid", refused)
        return account

    def account_name(self, user: str) -> str:
        """`300:0.NA/88.118.8` (Handle style: the prefix's owner), or an account name."""
        index, colon, handle = user.partition(":")
        if colon and index.isdigit():
            user = handle
        if user[: len(PREFIX_HANDLE)].upper() != PREFIX_HANDLE:
            return user
        try:
            info = self._prefix(user[len(PREFIX_HANDLE) :])
        except IdnodeError:
            return ""
        return info.owner

    def _prefix(self, text: str) -> handle_pb2.PrefixInfo:
        prefix = parse_prefix(text)
        with self._registry.store.read() as txn:
            info = self._registry.store.get_prefix(txn, prefix)
        if info is None:
            raise HandleNotFound(f"prefix handle {PREFIX_HANDLE}{prefix} not found")
        return info

    def prefix_record(self, handle: str) -> Encoded:
        """`0.NA/PREFIX`: the prefix's HS_ADMIN (its owner) and HS_SITE values (delegation)."""
        prefix = handle[len(PREFIX_HANDLE) :]
        try:
            info = self._prefix(prefix)
        except IdnodeError as error:
            return answers.rest_error(error, handle, resolving=True, result="not_found")
        owner_prefix = (
            self._registry.node_prefix if info.owner == accounts.ADMIN_NAME else info.owner
        )
        admin = {
            "handle": PREFIX_HANDLE + owner_prefix,
            "index": ADMIN_INDEX,
            "permissions": ADMIN_PERMISSIONS,
        }
        shown = [
            handle_pb2.HandleValue(
                index=ADMIN_INDEX, type="HS_ADMIN", data=formats.encode_admin(admin, "admin"),
                timestamp=info.created,
            )
        ]  # fmt: skip
        for number, site in enumerate(info.sites, start=1):
            shown.append(
                handle_pb2.HandleValue(
                    index=number, type="HS_SITE", data=_site(site), timestamp=info.created
                )
            )
        if info.prefix == self._registry.node_prefix:  # and the node's HS_PUBKEY (nodekey)
            store = self._registry.store
            with store.read() as txn:
                own = store.get_record(txn, nodekey.prefix_handle(info.prefix))
            taken = {v.index for v in shown}
            kept = own.values if own is not None else ()
            shown.extend(v for v in kept if v.index not in taken and values.is_public(v))
        return answers.rest_record(
            PREFIX_HANDLE + info.prefix, sorted(shown, key=lambda v: v.index)
        )


class Writer:
    """PUT and DELETE on /api/handles/{identifier}, and listing; each returns its response."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._counts = metrics.Tally(metrics.REGISTRATIONS)
        metrics.on_flush(self._counts.flush)

    def put(
        self,
        caller: Account | None,
        identifier: str,
        body: bytes,
        indexes: Sequence[int],
        overwrite: bool,
    ) -> Encoded:
        op = "put_values" if indexes else "put_record"
        try:
            # Handle clients send an HS_ADMIN value with every new record; here the
            # prefix's owner and the administrator administer it, so it is not kept.
            new = [v for v in formats.values_from_body(body) if v.type.upper() != "HS_ADMIN"]
            if indexes:
                wanted = set(indexes)
                new = [v for v in new if v.index in wanted]
                if not new:
                    raise InvalidRequest("no value in the body has an index named by index=")
                result = self._registry.put_values(caller, identifier, new, overwrite)
            else:
                result = self._registry.put_record(caller, identifier, new, overwrite)
        except IdnodeError as error:
            self._counts.add((op, _label(error)))
            return answers.rest_error(error, identifier)
        self._counts.add((op, "ok"))
        status = 201 if result.operation == "created" else 200
        return answers.rest_done(result.identifier, status, result.sequence)

    def delete(self, caller: Account | None, identifier: str, indexes: Sequence[int]) -> Encoded:
        op = "remove_values" if indexes else "delete"
        try:
            if indexes:
                result = self._registry.remove_values(caller, identifier, list(indexes))
            else:
                result = self._registry.delete(caller, identifier)
        except IdnodeError as error:
            self._counts.add((op, _label(error)))
            return answers.rest_error(error, identifier)
        self._counts.add((op, "ok"))
        return answers.rest_done(result.identifier, sequence=result.sequence)

    def list(
        self, caller: Account | None, prefix: str, page: int, page_size: int, token: str
    ) -> Encoded:
        """Handle's listing: {"responseCode", "prefix", "page", "pageSize", "handles"}."""
        try:
            if page * page_size > MAX_LISTED:
                raise InvalidRequest(f"page × pageSize beyond {MAX_LISTED}: use pageToken")
            for _ in range(page):  # Handle's page numbers over the registry's page tokens
                _, token = self._registry.list(caller, prefix, page_size, token)
                if not token:
                    break
            records, next_token = (
                self._registry.list(caller, prefix, page_size, token)
                if token or page == 0
                else ([], "")
            )
        except IdnodeError as error:
            return answers.rest_error(error)
        document = {
            "responseCode": answers.SUCCESS,
            "prefix": parse_prefix(prefix),
            "page": page,
            "pageSize": page_size,
            "handles": [r.identifier for r in records],
        }
        if next_token:
            document["nextPageToken"] = next_token
        return encoded(200, answers.JSON + answers.NO_CACHE, answers.dump(document))


def _basic(encoded: bytes) -> tuple[str, str]:
    """(user, password) of Basic credentials; the user is percent-decoded (Handle clients
    send `300%3A0.NA%2F88.118.8`, some send the colon as it is)."""
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed("Basic credentials are not base64 of UTF-8") from None
    user, colon, password = text.partition(":")
    if user.isdigit() and password.count(":"):  # an unencoded INDEX:HANDLE:PASSWORD
        handle, _, password = password.partition(":")
        user = f"{user}:{handle}"
    if not colon or not password:
        raise AuthenticationFailed("Basic credentials need a user and a password (the token)")
    return unquote(user), password


def _site(site: handle_pb2.Site) -> bytes:
    """A delegated prefix's site as HS_SITE JSON (format "site")."""
    interfaces = [
        {"protocol": name, "address": address}
        for name, address in (("gRPC", site.grpc_address), ("DNS", site.dns_address),
                              ("HTTP", site.http_address))
        if address
    ]  # fmt: skip
    document = {"version": 1, "servers": [{"serverId": 1, "interfaces": interfaces}]}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _label(error: IdnodeError) -> str:
    """A bounded metrics label: the error class in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()
