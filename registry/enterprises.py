"""The enterprises a node hosts: onboarding (a prefix, an account, a token), the lists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from proto import handle_pb2, registry_pb2
from registry import accounts, credentials, twins
from registry.accounts import Account
from registry.errors import InvalidIdentifier, InvalidRequest, NotResponsible, PrefixAlreadyExists
from registry.identifier import MAX_SEGMENT_CHARS, excerpt, fold_case, is_under, parse_prefix
from registry.store import Store
from registry.writebatch import WriteBatch

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_CODE = re.compile(r"[A-Za-z0-9-]{1,32}\Z")  # ASCII only: no \w, no IGNORECASE


@dataclass(frozen=True, slots=True)
class Enterprise:
    prefix: str
    account: str
    token: str


@dataclass(frozen=True, slots=True)
class Onboarding:
    """What the administrator asks for: a code ("" for the next free one) under `parent`
    ("" for the node prefix), the enterprise's name and contact, the token's lifetime."""

    code: str = ""
    name: str = ""
    contact: str = ""
    parent: str = ""
    expires_in_seconds: int = 0  # 0: never


def create(
    store: Store, node_prefix: str, caller: Account | None, asked: Onboarding, now: int
) -> Enterprise:
    """Allocate an enterprise prefix with its account and token.

    Raises PermissionDenied unless the caller is the administrator, InvalidIdentifier
    for a bad code, NotResponsible outside the node prefix, PrefixAlreadyExists,
    InvalidRequest for a bad expiry.
    """
    accounts.require_admin(caller, "create enterprises")
    credentials.check_duration(asked.expires_in_seconds, "the expiry")
    parent = parse_prefix(asked.parent) if asked.parent else node_prefix
    if not is_under(parent, node_prefix):
        raise NotResponsible(f"prefix {parent} is not under {node_prefix}")
    if asked.code and not _CODE.match(asked.code):
        raise InvalidIdentifier(
            f"enterprise code {excerpt(asked.code)} may contain only letters, digits, '-' "
            f"(at most {MAX_SEGMENT_CHARS})"
        )
    code = fold_case(asked.code)  # after the check: str.lower() maps U+212A KELVIN SIGN to "k"

    def work(batch: WriteBatch) -> Enterprise:
        if code:
            prefix = parse_prefix(f"{parent}.{code}")
            if batch.get_prefix(prefix) is not None:
                raise PrefixAlreadyExists(f"prefix {prefix} is already allocated")
            twins.refuse(batch, prefix, prefix.count("."))
        else:
            prefix = _next_free(batch, parent)
        batch.put_prefix(
            handle_pb2.PrefixInfo(
                prefix=prefix, owner=prefix, created=now, name=asked.name, contact=asked.contact
            )
        )
        account = Account(
            name=prefix, role=accounts.ENTERPRISE, prefixes=[prefix], contact=asked.contact,
            created=now,
        )  # fmt: skip
        token = credentials.grant(batch, account, now, asked.expires_in_seconds, "created")
        credentials.store_account(batch, account)  # logged: the account syncs upstream
        return Enterprise(prefix, prefix, token)

    return store.write(work)


def _next_free(batch: WriteBatch, parent: str) -> str:
    counter_key = f"next_code:{parent}"
    raw = batch.get_meta(counter_key)
    code = int(raw) if raw else 1
    while batch.get_prefix(f"{parent}.{code}") is not None or twins.find(
        batch, f"{parent}.{code}", parent.count(".") + 1
    ):
        code += 1
    batch.put_meta(counter_key, str(code + 1).encode())
    return parse_prefix(f"{parent}.{code}")


def list_enterprises(
    store: Store, caller: Account | None, page_size: int = 0, page_token: str = ""
) -> tuple[list[registry_pb2.Enterprise], str]:
    """Enterprises in prefix order from `page_token`, and the next page's token ("" at end).

    Raises AuthenticationRequired / PermissionDenied unless the caller is the
    administrator, InvalidRequest for a page size out of range.
    """
    accounts.require_admin(caller, "list enterprises")
    size = page_size or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    with store.read() as txn:
        infos = list(store.iter_prefixes(txn))
    derived: dict[str, list[str]] = {}
    for info in infos:
        if info.owner and info.owner != info.prefix:
            derived.setdefault(info.owner, []).append(info.prefix)
    page: list[registry_pb2.Enterprise] = []
    for info in infos:  # in key order: the prefix order
        if info.owner != info.prefix or info.prefix <= page_token:
            continue  # a derived prefix, the node prefix's own entry, or an earlier page
        if len(page) == size:
            return page, page[-1].prefix
        page.append(_enterprise(info, derived.get(info.prefix, [])))
    return page, ""


def _enterprise(info: handle_pb2.PrefixInfo, derived: list[str]) -> registry_pb2.Enterprise:
    return registry_pb2.Enterprise(
        account=info.owner,
        prefix=info.prefix,
        name=info.name,
        contact=info.contact,
        created=info.created,
        derived_prefixes=derived,
        sites=info.sites,
    )


def list_accounts(
    store: Store, caller: Account | None, page_size: int = 0, page_token: str = ""
) -> tuple[list[registry_pb2.AccountSummary], str]:
    """Accounts in name order after `page_token`, each with every prefix it owns and its
    credentials without their secrets; and the next page's token ("" at the end).

    Raises AuthenticationRequired / PermissionDenied unless the caller is the
    administrator, InvalidRequest for a page size out of range.
    """
    accounts.require_admin(caller, "list accounts")
    size = page_size or DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    page: list[registry_pb2.AccountSummary] = []
    with store.read() as txn:
        for account in store.iter_accounts(txn, page_token):
            if account.name == page_token:
                continue
            if len(page) == size:
                return page, page[-1].account.name
            page.append(
                registry_pb2.AccountSummary(
                    account=credentials.public(account),
                    prefixes=_owned(store, txn, account),
                    last_used=credentials.last_used(account),
                )
            )
    return page, ""


def _owned(store: Store, txn: Any, account: Account) -> list[str]:
    """The prefixes an account owns: its own and those derived below them (a range read
    per prefix, not a scan of every prefix)."""
    owned: list[str] = []
    for prefix in account.prefixes:
        owned.append(prefix)
        start = (prefix + ".").encode()
        with txn.cursor(db=store.prefixes) as cursor:
            if not cursor.set_range(start):
                continue
            for key in cursor.iternext(keys=True, values=False):
                if not bytes(key).startswith(start):
                    break
                owned.append(bytes(key).decode())
    return owned
