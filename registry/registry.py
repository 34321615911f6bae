"""Registry operations: create, change, delete, batch register, list, onboard enterprises."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proto import handle_pb2
from registry import accounts, bulk, enterprises, nodekey, packing, sites, twins, values
from registry.accounts import Account
from registry.bulk import BatchResult as BatchResult  # what batch_register returns
from registry.enterprises import Enterprise as Enterprise  # what create_enterprise returns
from registry.errors import (
    AuthenticationRequired,
    HandleAlreadyExists,
    HandleNotFound,
    IdnodeError,
    InvalidRequest,
    NotResponsible,
    PermissionDenied,
    PrefixNotFound,
    Referred,
    TooLarge,
    ValueAlreadyExists,
    ValueNotFound,
)
from registry.identifier import (
    Identifier,
    is_under,
    parent_prefixes,
    parse,
    parse_prefix,
)
from registry.store import Store
from registry.writebatch import WriteBatch

MAX_BATCH_RECORDS = 10_000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_BYTES = 4 << 20  # a page stops before this many bytes of records (one at least)
REFERRAL_TTL_SECONDS = 3600

Record = handle_pb2.Record
HandleValue = handle_pb2.HandleValue
Outcome = handle_pb2.ChangeEntry.Operation


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write did."""

    identifier: str
    operation: str  # created, values_added, values_modified, values_removed, deleted
    sequence: int
    values: list[HandleValue]


@dataclass(frozen=True, slots=True)
class Referral:
    """Where an identifier is served instead (Handle 301/302/303)."""

    code: int
    prefix: str
    sites: tuple[handle_pb2.Site, ...]
    ttl_seconds: int


class Registry:
    """The node's registry over one store; every method names its caller (None: anonymous)."""

    def __init__(
        self, store: Store, node_prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.node_prefix = parse_prefix(node_prefix)
        # The node's own prefix record (its HS_PUBKEY, registry.nodekey): the one record
        # outside the node prefix it answers for.
        self.prefix_handle = nodekey.prefix_handle(self.node_prefix)
        self._clock = clock

    def ensure_node_prefix(self) -> None:
        """Host the node prefix itself, owned by the administrator (idempotent)."""

        def work(batch: WriteBatch) -> None:
            if batch.get_prefix(self.node_prefix) is None:
                batch.put_prefix(
                    handle_pb2.PrefixInfo(
                        prefix=self.node_prefix, owner=accounts.ADMIN_NAME, created=self._now()
                    )
                )

        self.store.write(work)

    # Resolution -----------------------------------------------------------

    def resolve(self, identifier: Identifier) -> Record:
        """The stored record of `identifier`.

        Raises NotResponsible outside the node prefix, Referred when the prefix is
        delegated to an enterprise node, HandleNotFound when absent.
        """
        return self.locate(identifier)[0]

    def locate(self, identifier: Identifier) -> tuple[Record, str]:
        """The stored record of `identifier` and the account owning its prefix (who, with
        the administrator, may read its restricted values). Raises as `resolve`."""
        key = str(identifier)
        if not is_under(identifier.prefix, self.node_prefix) and key != self.prefix_handle:
            raise NotResponsible(
                f"prefix {identifier.prefix} is not under this node's prefix {self.node_prefix}"
            )
        with self.store.read() as txn:
            raw = txn.get(key.encode(), db=self.store.records)
            home = self._home(lambda p: self.store.get_prefix(txn, p), identifier.prefix)
        if home is not None and home.sites:
            referral = Referral(303, home.prefix, tuple(home.sites), REFERRAL_TTL_SECONDS)
            raise Referred(f"prefix {home.prefix} is served by its enterprise node", referral)
        if raw is None:
            raise HandleNotFound(f"identifier {key} not found")
        record = packing.decode(bytes(raw))
        record.identifier = key
        return record, home.owner if home is not None else accounts.ADMIN_NAME

    def may_read_restricted(self, caller: Account | None, prefix: str) -> bool:
        """True when `caller` may see values that are not publicly readable under `prefix`:
        the administrator, or the account owning the hosted prefix it is under."""
        if caller is None:
            return False
        if caller.role == accounts.ADMIN:
            return True
        home = self.home(prefix)
        return home is not None and accounts.may_write(caller, home.owner)

    def home(self, prefix: str) -> handle_pb2.PrefixInfo | None:
        """The longest hosted prefix that `prefix` is under, if any."""
        with self.store.read() as txn:
            return self._home(lambda p: self.store.get_prefix(txn, p), prefix)

    def _home(
        self, get: Callable[[str], handle_pb2.PrefixInfo | None], prefix: str
    ) -> handle_pb2.PrefixInfo | None:
        for candidate in parent_prefixes(prefix):
            if not is_under(candidate, self.node_prefix):
                return None
            info = get(candidate)
            if info is not None:
                return info
        return None

    # Single writes ----------------------------------------------------------

    def create(
        self, caller: Account | None, identifier: str, new: Sequence[HandleValue]
    ) -> WriteResult:
        """Create an identifier. Raises HandleAlreadyExists, InvalidValue, PermissionDenied…"""
        parsed = parse(identifier)
        stamped = values.normalise(new, self._now())

        def work(batch: WriteBatch) -> WriteResult:
            self._authorize(batch, caller, parsed.prefix, {})
            key = str(parsed)
            if batch.get_record(key) is not None:
                raise HandleAlreadyExists(f"identifier {key} already exists")
            sequence = batch.put_record(key, Record(values=stamped), created=True)
            return WriteResult(key, "created", sequence, stamped)

        return self.store.write(work)

    def add_values(
        self, caller: Account | None, identifier: str, new: Sequence[HandleValue]
    ) -> WriteResult:
        """Add values. Raises ValueAlreadyExists when an index is taken, HandleNotFound…"""
        stamped = values.normalise(new, self._now())

        def change(current: list[HandleValue]) -> list[HandleValue]:
            taken = {v.index for v in current}
            for value in stamped:
                if value.index in taken:
                    raise ValueAlreadyExists(
                        f"identifier {identifier} already has a value at index {value.index}"
                    )
            return sorted([*current, *stamped], key=lambda v: v.index)

        return self._change(caller, identifier, "values_added", change)

    def modify_values(
        self, caller: Account | None, identifier: str, new: Sequence[HandleValue]
    ) -> WriteResult:
        """Replace values by index. Raises ValueNotFound when an index is absent…"""
        stamped = {v.index: v for v in values.normalise(new, self._now())}

        def change(current: list[HandleValue]) -> list[HandleValue]:
            present = {v.index for v in current}
            for index in stamped:
                if index not in present:
                    raise ValueNotFound(f"identifier {identifier} has no value at index {index}")
            return [stamped.get(v.index, v) for v in current]

        return self._change(caller, identifier, "values_modified", change)

    def remove_values(
        self, caller: Account | None, identifier: str, indexes: Sequence[int]
    ) -> WriteResult:
        """Remove values by index. Raises ValueNotFound when an index is absent…"""
        if not indexes:
            raise InvalidRequest("no indexes given to remove")
        doomed = set(indexes)

        def change(current: list[HandleValue]) -> list[HandleValue]:
            present = {v.index for v in current}
            for index in sorted(doomed - present):
                raise ValueNotFound(f"identifier {identifier} has no value at index {index}")
            return [v for v in current if v.index not in doomed]

        return self._change(caller, identifier, "values_removed", change)

    def put_record(
        self,
        caller: Account | None,
        identifier: str,
        new: Sequence[HandleValue],
        overwrite: bool = True,
    ) -> WriteResult:
        """Create an identifier, or replace all its values when `overwrite` (Handle's PUT).

        Raises HandleAlreadyExists when it exists and not `overwrite`, InvalidValue…
        """
        parsed = parse(identifier)
        stamped = values.normalise(new, self._now())

        def work(batch: WriteBatch) -> WriteResult:
            self._authorize(batch, caller, parsed.prefix, {})
            key = str(parsed)
            exists = batch.get_record(key) is not None
            if exists and not overwrite:
                raise HandleAlreadyExists(f"identifier {key} already exists")
            sequence = batch.put_record(key, Record(values=stamped), created=not exists)
            return WriteResult(key, "values_replaced" if exists else "created", sequence, stamped)

        return self.store.write(work)

    def put_values(
        self,
        caller: Account | None,
        identifier: str,
        new: Sequence[HandleValue],
        overwrite: bool = True,
    ) -> WriteResult:
        """Add values, replacing those whose index is taken when `overwrite`.

        Raises ValueAlreadyExists for a taken index when not `overwrite`, HandleNotFound…
        """
        stamped = {v.index: v for v in values.normalise(new, self._now())}

        def change(current: list[HandleValue]) -> list[HandleValue]:
            if not overwrite:
                for value in current:
                    if value.index in stamped:
                        raise ValueAlreadyExists(
                            f"identifier {identifier} already has a value at index {value.index}"
                        )
            kept = [v for v in current if v.index not in stamped]
            return sorted([*kept, *stamped.values()], key=lambda v: v.index)

        return self._change(caller, identifier, "values_modified", change)

    def delete(self, caller: Account | None, identifier: str) -> WriteResult:
        """Delete an identifier with all its values. Raises HandleNotFound…"""
        parsed = parse(identifier)

        def work(batch: WriteBatch) -> WriteResult:
            self._authorize(batch, caller, parsed.prefix, {})
            key = str(parsed)
            if batch.get_record(key) is None:
                raise HandleNotFound(f"identifier {key} not found")
            return WriteResult(key, "deleted", batch.delete_record(key), [])

        return self.store.write(work)

    def _change(
        self,
        caller: Account | None,
        identifier: str,
        operation: str,
        change: Callable[[list[HandleValue]], list[HandleValue]],
    ) -> WriteResult:
        parsed = parse(identifier)

        def work(batch: WriteBatch) -> WriteResult:
            self._authorize(batch, caller, parsed.prefix, {})
            key = str(parsed)
            record = batch.get_record(key)
            if record is None:
                raise HandleNotFound(f"identifier {key} not found")
            after = change(list(record.values))
            values.check_limits(after)  # each call is within the limits, the sum may not be
            sequence = batch.put_record(key, Record(values=after), created=False)
            return WriteResult(key, operation, sequence, after)

        return self.store.write(work)

    # Batch register ---------------------------------------------------------

    def batch_register(self, caller: Account | None, records: Sequence[Record]) -> BatchResult:
        """Create or replace each record's values in one transaction (idempotent upsert).

        Invalid or forbidden items are rejected one by one with their reason; the
        rest commit together. Raises TooLarge past MAX_BATCH_RECORDS. The records' values
        are stamped in place (values.stamp_record): sending them again stores the same.
        """
        if len(records) > MAX_BATCH_RECORDS:
            raise TooLarge(f"batch has {len(records)} records, more than {MAX_BATCH_RECORDS}")
        if caller is None:
            raise AuthenticationRequired("batch register needs a bearer token")
        ready, refused = bulk.prepare(records, self._now(), self.store.page_bytes)

        def work(batch: WriteBatch) -> BatchResult:
            allowed: dict[str, IdnodeError | None] = {}
            return bulk.write(
                batch,
                ready,
                lambda prefix: self._authorize(batch, caller, prefix, allowed),
                refused,
            )

        return self.store.write(work)

    # Listing ----------------------------------------------------------------

    def list(
        self,
        caller: Account | None,
        prefix: str,
        page_size: int = 0,
        page_token: str = "",
        max_page_bytes: int = DEFAULT_PAGE_BYTES,
    ) -> tuple[list[Record], str]:
        """Records under exactly `prefix` in key order, and the next page's token ("" at end).

        A page ends after `page_size` records, or before the record that would take it
        past `max_page_bytes` (serialised); a single larger record is a page of its own.
        Raises AuthenticationRequired, PermissionDenied, InvalidRequest.
        """
        canonical = parse_prefix(prefix)
        if not self.may_read_restricted(caller, canonical):
            if caller is None:
                raise AuthenticationRequired("listing needs a bearer token")
            raise PermissionDenied(f"account {caller.name} may not list prefix {canonical}")
        size = page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        stop = (canonical + "/").encode()
        start = stop
        if page_token:
            if not page_token.startswith(canonical + "/"):
                raise InvalidRequest("page_token does not belong to this prefix")
            start = page_token.encode() + b"\x00"
        page: list[Record] = []
        page_bytes = 0
        with self.store.read() as txn:
            for key, record in self.store.iter_records(txn, start, stop):
                record.identifier = key
                record_bytes = record.ByteSize() + 8  # with its field tag and length
                if page and (len(page) == size or page_bytes + record_bytes > max_page_bytes):
                    return page, page[-1].identifier
                page.append(record)
                page_bytes += record_bytes
        return page, ""

    # Enterprises and prefixes -------------------------------------------------

    def create_enterprise(
        self,
        caller: Account | None,
        code: str = "",
        name: str = "",
        contact: str = "",
        parent: str = "",
        expires_in_seconds: int = 0,
    ) -> Enterprise:
        """Allocate an enterprise prefix (the requested code or the next free one) and its
        token (expiring `expires_in_seconds` from now; 0: never).

        Raises PermissionDenied unless the caller is the administrator, PrefixAlreadyExists,
        InvalidRequest for a bad expiry.
        """
        return enterprises.create(
            self.store,
            self.node_prefix,
            caller,
            enterprises.Onboarding(code, name, contact, parent, expires_in_seconds),
            self._now(),
        )

    def put_prefix(
        self, caller: Account | None, prefix: str, new_sites: Sequence[handle_pb2.Site]
    ) -> handle_pb2.PrefixInfo:
        """Create a derived prefix, or set the sites of one (delegation to an enterprise node).

        Raises InvalidValue or TooLarge for sites `registry.sites` refuses, and as writes do.
        """
        canonical = parse_prefix(prefix)
        sites.check_sites(new_sites)

        def work(batch: WriteBatch) -> handle_pb2.PrefixInfo:
            self._authorize(batch, caller, canonical, {})
            info = batch.get_prefix(canonical)
            assert info is not None  # _authorize hosts it
            del info.sites[:]
            info.sites.extend(new_sites)
            batch.put_prefix(info)
            return info

        return self.store.write(work)

    # Authorization ------------------------------------------------------------

    def _authorize(
        self,
        batch: WriteBatch,
        caller: Account | None,
        prefix: str,
        memo: dict[str, IdnodeError | None],
    ) -> None:
        """Raise unless `caller` may write under `prefix`; host a derived prefix on first use."""
        if prefix in memo:
            failure = memo[prefix]
            if failure is not None:
                raise failure
            return
        try:
            self._authorize_uncached(batch, caller, prefix)
        except IdnodeError as error:
            memo[prefix] = error
            raise
        memo[prefix] = None

    def _authorize_uncached(self, batch: WriteBatch, caller: Account | None, prefix: str) -> None:
        if caller is None:
            raise AuthenticationRequired("writing needs a bearer token")
        if not is_under(prefix, self.node_prefix):
            raise NotResponsible(
                f"prefix {prefix} is not under this node's prefix {self.node_prefix}"
            )
        home = self._home(batch.get_prefix, prefix)
        if home is None:
            raise NotResponsible(f"prefix {prefix} is not hosted on this node")
        if not accounts.may_write(caller, home.owner):
            raise PermissionDenied(f"account {caller.name} may not write under prefix {prefix}")
        if home.prefix == self.node_prefix != prefix:
            # Codes directly under the node prefix are enterprise prefixes: only
            # onboarding allocates them, so a stray write cannot take one.
            raise PrefixNotFound(
                f"prefix {prefix} is not allocated on this node; "
                "allocate it first (idnode enterprise create --code …)"
            )
        if home.prefix != prefix:
            twins.refuse(batch, prefix, home.prefix.count(".") + 1)
            batch.put_prefix(
                handle_pb2.PrefixInfo(prefix=prefix, owner=home.owner, created=self._now())
            )

    def _now(self) -> int:
        return int(self._clock())
