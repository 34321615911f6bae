"""DNS cookies (RFC 7873): a server cookie proves the client receives our replies.

Server cookies follow RFC 9018's layout (version 1, three reserved octets, a
32-bit timestamp, an 8-octet hash of the client cookie, those fields and the
client address), keyed by a secret shared by every worker of the node. The hash
is keyed BLAKE2b rather than SipHash-2-4: only this node's own workers check it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import struct
import time
from collections.abc import Callable

from registry.store import Store, WriteBatch
from resolver.dns import wire

VERSION = 1
MAX_AGE_SECONDS = 3600  # an older server cookie is no longer valid (RFC 9018 §4.3)
MAX_AHEAD_SECONDS = 300  # clocks of a node's workers may disagree this much
SECRET_BYTES = 16
META_KEY = "dns.cookie_secret"
_HEAD = struct.Struct("!B3xI")


class Cookies:
    """Makes and checks server cookies with one secret."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def answer(self, cookie: bytes, source: str) -> tuple[bytes, bool]:
        """The COOKIE option for our reply to `cookie` (already checked in form) from
        `source`, and whether the server cookie the client sent was valid."""
        client = cookie[: wire.CLIENT_COOKIE_BYTES]
        now = int(self._clock())
        address = _packed(source)
        valid = False
        if len(cookie) == wire.CLIENT_COOKIE_BYTES + 16 and cookie[8] == VERSION:
            stamp = _HEAD.unpack_from(cookie, 8)[1]
            if now - MAX_AGE_SECONDS <= stamp <= now + MAX_AHEAD_SECONDS:
                expected = self._hash(client, cookie[8:16], address)
                valid = hmac.compare_digest(expected, cookie[16:24])
        head = _HEAD.pack(VERSION, now & 0xFFFFFFFF)
        server = head + self._hash(client, head, address)
        return wire.option(wire.OPTION_COOKIE, client + server), valid

    def _hash(self, client: bytes, head: bytes, address: bytes) -> bytes:
        return hashlib.blake2b(client + head + address, key=self._secret, digest_size=8).digest()


def _packed(source: str) -> bytes:
    try:
        return ipaddress.ip_address(source.partition("%")[0]).packed
    except ValueError:
        return source.encode()[:16]


def secret_for(store: Store, configured: str) -> bytes:
    """The configured secret (hex), or the node's own, made once and kept in the store."""
    if configured:
        return bytes.fromhex(configured)

    def work(batch: WriteBatch) -> bytes:
        found = batch.get_meta(META_KEY)
        if found is None:
            found = os.urandom(SECRET_BYTES)
            batch.put_meta(META_KEY, found)
        return found

    with store.read() as txn:
        kept = store.get_meta(txn, META_KEY)
    return kept if kept is not None else store.write(work)
