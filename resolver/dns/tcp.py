"""DNS over TCP that nobody can starve: a deadline per message, the oldest idle
connection evicted when full, a cap per source, and refusals counted and logged."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import metrics
from resolver.dns.config import DnsOptions

_LENGTH = struct.Struct("!H")
_log = logging.getLogger(__name__)
LOG_INTERVAL_SECONDS = 60.0  # refusals and evictions are logged at most once per interval

Answer = Callable[[bytes, str], Iterator[bytes]]


class _Connection:
    __slots__ = ("busy", "last_done", "sock", "source")

    def __init__(self, sock: socket.socket, source: str, now: float) -> None:
        self.sock = sock
        self.source = source
        self.last_done = now  # accepted, or last reply sent: older is evicted first
        self.busy = False  # answering (a zone transfer may take long): never evicted


class _Closed(Exception):
    """The client went away, or the server closed the connection (reason in args[0])."""


class TcpConnections:
    """Accepts, times and evicts connections; one thread per live connection."""

    def __init__(self, options: DnsOptions, answer: Answer, stopping: threading.Event) -> None:
        self._options = options
        self._answer = answer
        self._stopping = stopping
        self._lock = threading.Lock()
        self._live: dict[socket.socket, _Connection] = {}
        self._closed = metrics.Tally(metrics.DNS_TCP_CLOSED)
        metrics.on_flush(self._closed.flush)
        self._unlogged: dict[str, int] = {}
        self._logged_at = 0.0

    def sockets(self) -> list[socket.socket]:
        with self._lock:
            return list(self._live)

    def serve(self, listener: socket.socket) -> None:
        """Accept until stopped."""
        while not self._stopping.is_set():
            try:
                sock, address = listener.accept()
            except OSError:
                if self._stopping.wait(0.05):
                    return
                continue  # out of descriptors or an aborted handshake: keep serving
            if self._admit(sock, address[0]):
                threading.Thread(
                    target=self._serve_one, args=(sock, address[0]), daemon=True, name="dns-tcp"
                ).start()

    def _admit(self, sock: socket.socket, source: str) -> bool:
        now = time.monotonic()
        with self._lock:
            mine = [c for c in self._live.values() if c.source == source]
            full = len(mine) >= self._options.max_tcp_connections_per_source
            victim = _oldest_idle(mine) if full else None
            if not full and len(self._live) >= self._options.max_tcp_connections:
                full, victim = True, _oldest_idle(self._live.values())
            if not full or victim is not None:
                if victim is not None:
                    del self._live[victim.sock]
                self._live[sock] = _Connection(sock, source, now)
        if full and victim is None:
            self._count("refused")
            sock.close()
            return False
        if victim is not None:
            self._count("evicted")
            with contextlib.suppress(OSError):
                victim.sock.shutdown(socket.SHUT_RDWR)
        return True

    def _serve_one(self, sock: socket.socket, source: str) -> None:
        """Answer pipelined requests in order until the client goes quiet, slow or away."""
        reason = ""
        try:
            while True:
                data = self._read_message(sock)
                with self._lock:
                    connection = self._live.get(sock)
                    if connection is None:
                        return  # evicted meanwhile
                    connection.busy = True
                sock.settimeout(self._options.tcp_idle_timeout_seconds)  # a reader that stalls
                for reply in self._answer(data, source):
                    sock.sendall(_LENGTH.pack(len(reply)) + reply)
                with self._lock:
                    connection.busy = False
                    connection.last_done = time.monotonic()
        except _Closed as closed:
            reason = str(closed.args[0])
        except OSError:
            pass  # reset, eviction, or shutdown by stop()
        except Exception:
            _log.exception("DNS over TCP failed")
        finally:
            with self._lock:
                self._live.pop(sock, None)
            if reason:
                self._count(reason)  # before the close, which the client sees
            sock.close()

    def _read_message(self, sock: socket.socket) -> bytes:
        """One length-prefixed message: the first byte within the idle timeout, the whole
        message within the message timeout of its first byte."""
        sock.settimeout(self._options.tcp_idle_timeout_seconds)
        try:
            first = sock.recv(2)
        except TimeoutError:
            raise _Closed("idle") from None
        if not first:
            raise _Closed("")
        deadline = time.monotonic() + self._options.tcp_message_timeout_seconds
        head = first + (self._receive(sock, 2 - len(first), deadline) if len(first) < 2 else b"")
        return self._receive(sock, _LENGTH.unpack(head)[0], deadline)

    @staticmethod
    def _receive(sock: socket.socket, size: int, deadline: float) -> bytes:
        chunks = []
        while size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Closed("slow")
            sock.settimeout(left)
            try:
                chunk = sock.recv(size)
            except TimeoutError:
                raise _Closed("slow") from None
            if not chunk:
                raise _Closed("")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _count(self, reason: str) -> None:
        self._closed.add((reason,))
        if reason == "idle":
            return  # the normal end of a connection: counted, not logged
        now = time.monotonic()
        with self._lock:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            if now - self._logged_at < LOG_INTERVAL_SECONDS:
                return
            counts, self._unlogged, self._logged_at = self._unlogged, {}, now
        _log.warning(
            "DNS over TCP under pressure: %s in the last %.0f s "
            "(limits: %d connections, %d per source)",
            ", ".join(f"{n} {r}" for r, n in sorted(counts.items())), LOG_INTERVAL_SECONDS,
            self._options.max_tcp_connections, self._options.max_tcp_connections_per_source,
        )  # fmt: skip


def _oldest_idle(connections: Iterable[_Connection]) -> _Connection | None:
    idle = [c for c in connections if not c.busy]
    return min(idle, key=lambda c: c.last_done) if idle else None
