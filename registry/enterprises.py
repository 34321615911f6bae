"""The enterprises a node hosts, as the administrator lists them."""

from __future__ import annotations

from typing import Any

from proto import handle_pb2, registry_pb2
from registry import accounts, credentials
from registry.accounts import Account
from registry.errors import InvalidRequest
from registry.store import Store

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


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
