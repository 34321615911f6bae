"""Thin UDP and TCP servers around the wire handler: they only move and frame bytes."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Sequence

from registry.store import Store
from resolver.dns import udp
from resolver.dns.config import DnsConfigError, DnsOptions, parse_host_port
from resolver.dns.handler import Handler
from resolver.dns.tcp import TcpConnections
from resolver.follow import ChangeFollower

_BIND_ATTEMPTS = 20


class DnsServer:
    """Serves the zone on UDP and TCP at each listen address, one thread per UDP socket.

    Every socket sets SO_REUSEPORT, so several worker processes can bind the same port.
    A UDP loop takes `options.udp_batch` datagrams per system call (recvmmsg/sendmmsg)
    on Linux, one per call elsewhere or when it is 0 or 1.
    """

    def __init__(
        self, store: Store, node_prefix: str, follower: ChangeFollower, options: DnsOptions
    ) -> None:
        self.node_prefix = node_prefix
        self.options = options
        self.handler = Handler(store, follower, options)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.tcp = TcpConnections(options, self.handler.handle_tcp, self._stopping)
        self.bound: list[tuple[str, int]] = []

    def start(self, listen: Sequence[str]) -> list[tuple[str, int]]:
        """Bind every "HOST:PORT" (port 0: any free port, the same for UDP and TCP) and serve.

        Returns the bound (host, port) per address. Raises DnsConfigError or OSError.
        """
        bound = []
        for text in listen:
            host, port = parse_host_port(text, "dns listen")
            udp, tcp = _bind_pair(host, port)
            self._sockets += [udp, tcp]
            bound.append((host, udp.getsockname()[1]))
            self.bound.append(bound[-1])
            self._spawn(self._serve_udp, udp)
            self._spawn(self.tcp.serve, tcp)
        return bound

    def stop(self) -> None:
        """Close every socket and wait for the threads to end."""
        self._stopping.set()
        sockets = [*self._sockets, *self.tcp.sockets()]
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()

    def _spawn(self, target: Callable[[socket.socket], None], sock: socket.socket) -> None:
        thread = threading.Thread(target=target, args=(sock,), daemon=True, name="dns")
        thread.start()
        self._threads.append(thread)

    def _serve_udp(self, sock: socket.socket) -> None:
        """The UDP loop of one socket: batched where recvmmsg exists and is not turned off.

        The loop owns its response counts (no lock per packet).
        """
        handle = self.handler.handle_wire
        counts = self.handler.stats.counts("udp")
        stopping = self._stopping.is_set
        size = self.options.udp_batch
        calls = udp.batch_calls() if size > 1 else None
        if calls is None:
            udp.serve_plain(sock, handle, counts, stopping)
            return
        batch = udp.Batch(sock.family, size)
        try:
            udp.serve_batched(sock, handle, counts, stopping, batch, calls)
        finally:
            batch.close()


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port; port 0 picks one free for both."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _attempt in range(_BIND_ATTEMPTS):
        udp = _socket(family, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
            chosen = udp.getsockname()[1]
            tcp = _socket(family, socket.SOCK_STREAM)
            try:
                tcp.bind((host, chosen))
                tcp.listen(128)
            except OSError:
                tcp.close()
                raise
        except OSError:
            udp.close()
            if port:
                raise
            continue
        return udp, tcp
    raise DnsConfigError(f"dns listen: no free port on {host} for both UDP and TCP")


def _socket(family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock
