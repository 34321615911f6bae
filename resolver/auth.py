"""Who is calling, whatever the face: tokens to accounts, cached briefly; failures counted,
logged once per source and minute, and slowed."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

import metrics
from registry import authentication, credentials
from registry.accounts import Account
from registry.errors import AuthenticationFailed, IdnodeError, TokenExpired
from registry.store import Store

log = logging.getLogger("idnode.auth")

TOKEN_CACHE_SECONDS = 5.0  # how long a revoked or changed credential may still be honoured
FAILURE_WINDOW_SECONDS = 60.0
FREE_FAILURES = 5  # per source and window before its attempts are slowed down
FIRST_DELAY_SECONDS = 0.05  # doubling with each further failure ...
MAX_DELAY_SECONDS = 1.0  # ... up to this
MAX_DELAYED_CALLS = 2  # handler threads that may wait at once; past that, refuse at once
MAX_SOURCES = 4096


class Authenticator:
    """The account behind a bearer token, whatever the face (gRPC metadata, HTTP).

    Failed authentications are counted (`idnode_auth_failures_total{reason}`),
    logged at most once per source address and minute, and a source that keeps
    failing has its further attempts delayed (never more than MAX_DELAYED_CALLS
    handler threads at once: the others are refused without a look-up).
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._cache: TTLCache[str, authentication.Authenticated] = TTLCache(
            maxsize=10_000, ttl=TOKEN_CACHE_SECONDS
        )
        # (account, credential id) -> last use, seconds since the epoch: a dictionary write
        # per authenticated call; UsageRecorder stores it at most once a minute.
        self.used: dict[tuple[str, str], int] = {}
        self._wall = time.time
        self._lock = threading.Lock()
        self._failures = FailureTable(clock)
        self._sleep = sleep
        self._delay_slots = threading.BoundedSemaphore(MAX_DELAYED_CALLS)
        self._counts = metrics.Tally(metrics.AUTH_FAILURES)
        metrics.on_flush(self._counts.flush)

    def account(self, token: str | None, source: str = "") -> Account | None:
        """The account of `token` (None for None), presented from address `source`.

        Raises AuthenticationFailed for an unknown token, or when `source` failed too
        often to be served now.
        """
        if token is None:
            return None
        now = int(self._wall())
        with self._lock:
            found = self._cache.get(token)
        if found is not None and (not found.expires or found.expires > now):
            self.used[found.account.name, found.credential_id] = now
            return found.account
        self._hold_back(source)
        try:
            found = authentication.authenticate(self._store, token, now)
        except AuthenticationFailed as error:
            reason = "expired" if isinstance(error, TokenExpired) else "invalid"
            raise self.failed(source, reason, error) from None
        with self._lock:
            self._cache[token] = found
        self.used[found.account.name, found.credential_id] = now
        return found.account

    def forget(self) -> None:
        """Drop every cached token: a credential changed (the change log said so)."""
        with self._lock:
            self._cache.clear()

    def _hold_back(self, source: str) -> None:
        """Delay a source that keeps failing; refuse it when enough threads already wait."""
        delay = self._failures.delay_seconds(source)
        if delay <= 0:
            return
        if not self._delay_slots.acquire(blocking=False):
            raise self.failed(
                source,
                "throttled",
                AuthenticationFailed("too many failed authentications from this address; retry"),
            )
        try:
            self._sleep(delay)
        finally:
            self._delay_slots.release()

    def failed(self, source: str, reason: str, error: AuthenticationFailed) -> AuthenticationFailed:
        """Count and (once per source and minute) log a failure; returns `error` to raise.
        A face calls it itself for a credential it cannot even parse (reason "malformed")."""
        self._counts.add((reason,))
        earlier = self._failures.record(source)
        if earlier is not None:  # the first failure from there this minute
            before = f" ({earlier} the minute before)" if earlier else ""
            log.warning(
                "authentication failed from %s (%s): %s; further failures from there are "
                "counted, not logged, for a minute%s",
                source, reason, error, before,
            )  # fmt: skip
        return error


@dataclass(slots=True)
class _Failures:
    window_start: float
    count: int = 0
    earlier: int = 0  # failures in the window before


class FailureTable:
    """Failed authentications per source in fixed windows; bounded in entries (LRU)."""

    def __init__(self, clock: Callable[[], float], max_sources: int = MAX_SOURCES) -> None:
        self._clock = clock
        self._max_sources = max_sources
        self._sources: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, source: str) -> int | None:
        """Count a failure. For the first in a window (log it) returns the failures of
        the window before; None for the others."""
        with self._lock:
            entry = self._current(source, create=True)
            assert entry is not None
            entry.count += 1
            return entry.earlier if entry.count == 1 else None

    def delay_seconds(self, source: str) -> float:
        """How long to hold this source's next attempt: 0 until it failed FREE_FAILURES times."""
        with self._lock:
            entry = self._current(source, create=False)
            excess = entry.count - FREE_FAILURES if entry is not None else -1
        if excess < 0:
            return 0.0
        return min(FIRST_DELAY_SECONDS * 2.0 ** min(excess, 16), MAX_DELAY_SECONDS)

    def _current(self, source: str, create: bool) -> _Failures | None:
        now = self._clock()
        entry = self._sources.get(source)
        if entry is not None and now - entry.window_start >= FAILURE_WINDOW_SECONDS:
            # A new window: a source that stopped failing is forgiven.
            recent = now - entry.window_start < 2 * FAILURE_WINDOW_SECONDS
            entry.earlier = entry.count if recent else 0
            entry.count = 0
            entry.window_start = now
        if entry is None:
            if not create:
                return None
            entry = self._sources[source] = _Failures(now)
            if len(self._sources) > self._max_sources:
                self._sources.popitem(last=False)
        self._sources.move_to_end(source)
        return entry


LAST_USED_FLUSH_SECONDS = 60.0


class UsageRecorder:
    """Stores when tokens were last used, once a minute, off the request path."""

    def __init__(self, authenticator: Authenticator, store: Store) -> None:
        self._authenticator = authenticator
        self._store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="token-use", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> int:
        """Store what was used since the last flush; returns credentials updated."""
        used = self._authenticator.used
        if not used:
            return 0
        self._authenticator.used = {}  # swapped, not cleared: writers keep a dict to write
        # A handler thread may still add to the old dict: copy it (one step under the GIL)
        # rather than iterate it while it changes; such a late use is recorded next time.
        return credentials.record_use(self._store, dict(used))

    def _run(self) -> None:
        while not self._stop.wait(LAST_USED_FLUSH_SECONDS):
            try:
                self.flush()
            except IdnodeError:
                log.exception("recording token use failed; retrying in a minute")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        try:
            self.flush()
        except IdnodeError:
            log.exception("recording token use failed at shutdown")
