"""NOTIFY (RFC 1996) to the configured secondaries after changes: coalesced and retried."""

from __future__ import annotations

import random
import select
import socket
import threading
import time

from registry.store import Store
from resolver.dns import records, serial, wire
from resolver.dns.config import DnsOptions, parse_host_port

POLL_SECONDS = 0.2  # changes within one poll share one NOTIFY
FIRST_RETRY_SECONDS = 1.0
MAX_ATTEMPTS = 5


class _Target:
    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.pending = False
        self.attempts = 0
        self.next_send = 0.0
        self.ident = -1


class Notifier:
    """Watches the change log and tells each secondary when the SOA serial moved.

    Run it in one process only. A burst of changes yields one NOTIFY per
    secondary; an unanswered NOTIFY is sent again after 1, 2, 4, 8 and 16 seconds.
    """

    def __init__(
        self, store: Store, options: DnsOptions, first_retry_seconds: float = FIRST_RETRY_SECONDS
    ) -> None:
        self._store = store
        self._first_retry_seconds = first_retry_seconds
        self._apex = records.Apex(options.zone, options.nameservers, options.glue)
        self._targets = [_Target(parse_host_port(t, "notify")) for t in options.notify]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: dict[int, socket.socket] = {}
        self.sent = 0
        self.acknowledged = 0

    def start(self) -> None:
        """Start watching the change log (nothing to do when no secondary is configured)."""
        if not self._targets:
            return
        serial.ensure_epoch(self._store, self._apex.fingerprint)
        for family in {target.family for target in self._targets}:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            sock.setblocking(False)
            self._sockets[family] = sock
        self._thread = threading.Thread(target=self._run, name="dns-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sock in self._sockets.values():
            sock.close()

    def _run(self) -> None:
        txn_id = -1
        current = -1  # so the first look sends NOTIFY: the apex may have changed while we were down
        while not self._stop.is_set():
            now = time.monotonic()
            if self._store.last_txn_id() != txn_id:
                txn_id = self._store.last_txn_id()
                latest = self._serial()
                if latest != current:
                    current = latest
                    for target in self._targets:
                        target.pending, target.attempts, target.next_send = True, 0, now
            wait = POLL_SECONDS
            for target in self._targets:
                if not target.pending:
                    continue
                if target.next_send <= now:
                    self._send(target, current)
                    if target.attempts > MAX_ATTEMPTS:
                        target.pending = False
                        continue
                wait = min(wait, max(target.next_send - now, 0.0))
            self._receive(wait)

    def _serial(self) -> int:
        with self._store.read() as txn:
            return serial.serial_at(serial.read(self._store, txn), self._store.last_sequence(txn))

    def _send(self, target: _Target, soa_serial: int) -> None:
        target.ident = random.getrandbits(16)
        header = wire.HEADER.pack(target.ident, wire.OPCODE_NOTIFY << 11 | 0x0400, 1, 1, 0, 0)
        question = self._apex.zone_wire + wire.U16.pack(wire.SOA) + wire.U16.pack(wire.CLASS_IN)
        message = header + question + self._apex.soa_rr(soa_serial, b"\xc0\x0c")
        target.attempts += 1
        target.next_send = time.monotonic() + self._first_retry_seconds * 2 ** (target.attempts - 1)
        try:
            self._sockets[target.family].sendto(message, target.address)
            self.sent += 1
        except OSError:
            pass  # unreachable now; the retry will try again

    def _receive(self, timeout: float) -> None:
        sockets = list(self._sockets.values())
        if not sockets:
            self._stop.wait(timeout)
            return
        readable, _, _ = select.select(sockets, [], [], timeout)
        for sock in readable:
            try:
                data, address = sock.recvfrom(65535)
            except OSError:
                continue
            if len(data) < 12 or not data[2] & 0x80 or (data[2] >> 3) & 0xF != wire.OPCODE_NOTIFY:
                continue
            ident = wire.U16.unpack_from(data)[0]
            for target in self._targets:
                if target.pending and target.ident == ident and target.address[1] == address[1]:
                    target.pending = False
                    self.acknowledged += 1
