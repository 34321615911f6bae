"""The UDP loops: one datagram per system call, or batches through recvmmsg/sendmmsg."""

from __future__ import annotations

import ctypes
import logging
import mmap
import socket
import sys
from collections.abc import Callable

from resolver.dns.config import MAX_UDP_BATCH
from resolver.dns.stats import Counts

Calls = tuple[Callable[..., int], Callable[..., int]]  # recvmmsg, sendmmsg
Handle = Callable[[bytes, str, bool, Counts | None], bytes | None]
_log = logging.getLogger(__name__)

SLOT_BYTES = 65535  # room per datagram: the largest UDP payload, so none is cut short
MAX_SOURCES = 65536  # client addresses whose text is remembered, then forgotten at once
_MSG_TRUNC = 0x20
_MSG_WAITFORONE = 0x10000  # block for the first datagram only, then take what is queued
_EINTR = 4
SOCKADDR_BYTES = 128  # sizeof(struct sockaddr_storage)


def serve_plain(
    sock: socket.socket, handle: Handle, counts: Counts, stopping: Callable[[], bool]
) -> None:
    """Receive, answer, send: one datagram at a time, nothing else in the loop.

    The handler answers its own failures; the try only keeps the loop alive.
    """
    receive = sock.recvfrom
    send = sock.sendto
    while True:
        try:
            data, address = receive(SLOT_BYTES)
        except OSError:
            if stopping():
                return
            continue
        if not data and stopping():
            return
        try:
            reply = handle(data, address[0], False, counts)
        except Exception:
            _log.exception("DNS handler raised")
            continue
        if reply is not None:
            try:  # noqa: SIM105 - a bare try costs less than suppress() per packet
                send(reply, address)
            except OSError:
                pass  # an unreachable client must not stop the loop


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


# Where the loop reads and writes, in units of the views' items (see Batch).
_HEADER_WORDS = ctypes.sizeof(_Mmsghdr) // 4  # one mmsghdr in 32-bit words
_LEN_WORD = _Mmsghdr.msg_len.offset // 4
_FLAGS_WORD = (_Mmsghdr.msg_hdr.offset + _Msghdr.msg_flags.offset) // 4
_HEADER_POINTERS = ctypes.sizeof(_Mmsghdr) // ctypes.sizeof(ctypes.c_void_p)
_NAME_POINTER = _Msghdr.msg_name.offset // ctypes.sizeof(ctypes.c_void_p)
_IOVEC_BYTES = ctypes.sizeof(_Iovec)
_IOVEC_SIZES = _IOVEC_BYTES // ctypes.sizeof(ctypes.c_size_t)
_LENGTH_SIZE = _Iovec.iov_len.offset // ctypes.sizeof(ctypes.c_size_t)


def batch_calls() -> Calls | None:
    """libc's recvmmsg and sendmmsg, ready to call; None where there are none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        receive, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    receive.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    receive.restype = send.restype = ctypes.c_int
    return receive, send


class Batch:
    """Buffers and message headers for `size` datagrams each way, made once per socket.

    Datagram i lands in slot i of `received`, its sender's sockaddr in slot i of
    `names`; reply j is copied to slot j of `replies`, and its header is pointed
    at the sockaddr of the datagram it answers. The buffers are anonymous maps:
    pages no datagram touched take no memory.
    """

    def __init__(self, family: int, size: int, slot_bytes: int = SLOT_BYTES) -> None:
        if not 1 <= size <= MAX_UDP_BATCH:
            raise ValueError(f"batch size {size} is not within 1..{MAX_UDP_BATCH}")
        self.size = size
        self.slot_bytes = slot_bytes
        self.family = family
        v4 = family == socket.AF_INET
        self.received = mmap.mmap(-1, size * slot_bytes)
        self.replies = mmap.mmap(-1, size * slot_bytes)
        self.names = mmap.mmap(-1, size * SOCKADDR_BYTES)
        self._anchors = [ctypes.c_char.from_buffer(area) for area in
                         (self.received, self.replies, self.names)]  # fmt: skip
        received, replies, self.names_address = (ctypes.addressof(a) for a in self._anchors)
        self._iovecs = (_Iovec * (2 * size))()  # receive iovecs, then send iovecs
        self._headers = (_Mmsghdr * (2 * size))()  # receive headers, then send headers
        iovecs = ctypes.addressof(self._iovecs)
        for i in range(2 * size):
            sending = i >= size
            self._iovecs[i].iov_base = (replies if sending else received) + (i % size) * slot_bytes
            self._iovecs[i].iov_len = slot_bytes
            header = self._headers[i].msg_hdr
            header.msg_name = self.names_address + (i % size) * SOCKADDR_BYTES
            header.msg_namelen = (16 if v4 else 28) if sending else SOCKADDR_BYTES
            header.msg_iov = iovecs + i * ctypes.sizeof(_Iovec)
            header.msg_iovlen = 1
        self.header_bytes = ctypes.sizeof(_Mmsghdr)
        self.receive_headers = ctypes.addressof(self._headers)
        self.send_headers = self.receive_headers + size * self.header_bytes
        # Lengths, flags and addresses are read and written by index through these views
        # (an index into a memoryview costs far less than a ctypes field access), at the
        # positions worked out here once for every slot.
        self.receive_words = memoryview(self._headers).cast("B").cast("I")
        send_half = memoryview(self._headers).cast("B")[size * self.header_bytes :]
        self.send_pointers = send_half.cast("P")
        self.send_lengths = memoryview(self._iovecs).cast("B")[size * _IOVEC_BYTES :].cast("L")
        first, last = (4, 8) if v4 else (8, 24)  # sin_addr, sin6_addr within a sockaddr
        self.receive_slots = [
            (
                i * _HEADER_WORDS + _LEN_WORD,  # msg_len, in receive_words
                i * _HEADER_WORDS + _FLAGS_WORD,  # msg_flags, in receive_words
                i * slot_bytes,  # the datagram, in received
                i * SOCKADDR_BYTES + first,  # the sender's address octets, in names
                i * SOCKADDR_BYTES + last,
                self.names_address + i * SOCKADDR_BYTES,  # its sockaddr, for the reply
            )
            for i in range(size)
        ]
        self.send_slots = [
            (
                j * slot_bytes,  # the reply, in replies
                j * _IOVEC_SIZES + _LENGTH_SIZE,  # iov_len, in send_lengths
                j * _HEADER_POINTERS + _NAME_POINTER,  # msg_name, in send_pointers
            )
            for j in range(size)
        ]

    def close(self) -> None:
        """Release the buffers (after the loop using them has returned)."""
        for view in (self.receive_words, self.send_pointers, self.send_lengths):
            view.release()
        self._anchors.clear()
        for area in (self.received, self.replies, self.names):
            area.close()


def serve_batched(
    sock: socket.socket,
    handle: Handle,
    counts: Counts,
    stopping: Callable[[], bool],
    batch: Batch,
    calls: Calls,
) -> None:
    """Receive up to `batch.size` datagrams in one call, answer each, send the replies in
    one call, until `stopping()`. A datagram cut short (MSG_TRUNC) is dropped unanswered,
    as an empty one is (shutdown() wakes the call with one)."""
    recvmmsg, sendmmsg = calls
    received, replies, names = batch.received, batch.replies, batch.names
    words, pointers, lengths = batch.receive_words, batch.send_pointers, batch.send_lengths
    receive_slots, send_slots = batch.receive_slots, batch.send_slots
    slot, size, header_bytes = batch.slot_bytes, batch.size, batch.header_bytes
    receive_headers, send_headers = batch.receive_headers, batch.send_headers
    family, cut_short, log = batch.family, _MSG_TRUNC, _log
    sources: dict[bytes, str] = {}
    ntop = socket.inet_ntop
    # fileno() at each call, not once: after close() it is -1 (EBADF), never a reused fd.
    while not stopping():
        got = recvmmsg(sock.fileno(), receive_headers, size, _MSG_WAITFORONE, None)
        count = 0
        for i in range(got):  # (none when got is -1: an error, or woken by shutdown)
            length_at, flags_at, start, address_from, address_to, sockaddr = receive_slots[i]
            length = words[length_at]
            if not length or words[flags_at] & cut_short:
                continue
            address = names[address_from:address_to]
            source = sources.get(address)
            if source is None:
                if len(sources) >= MAX_SOURCES:
                    sources.clear()
                source = sources[address] = ntop(family, address)
            try:
                reply = handle(received[start : start + length], source, False, counts)
            except Exception:
                log.exception("DNS handler raised")
                continue
            if reply is None:
                continue
            length = len(reply)
            if length > slot:
                continue  # (no UDP reply is near a slot's size; sendto would fail the same)
            start, length_at, name_at = send_slots[count]
            replies[start : start + length] = reply
            lengths[length_at] = length
            pointers[name_at] = sockaddr
            count += 1
        if count:
            _send(sendmmsg, sock.fileno(), send_headers, header_bytes, count)


def _send(
    sendmmsg: Callable[..., int], fd: int, headers: int, header_bytes: int, count: int
) -> None:
    """Send `count` prepared replies; one that fails (an unreachable client) is skipped."""
    sent = 0
    while sent < count:
        done = sendmmsg(fd, headers + sent * header_bytes, count - sent, 0)
        if done > 0:
            sent += done
        elif ctypes.get_errno() != _EINTR:
            sent += 1
