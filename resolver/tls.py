"""TLS for the faces and the node's own client calls: certificates that reload on SIGHUP.

A `CertificateSource` reads a PEM pair from its files; `reload()` reads them again.
New handshakes then get the new pair, established connections keep theirs:
- gRPC asks a certificate-configuration fetcher before every handshake
  (`grpc.dynamic_ssl_server_credentials`), and gets a new configuration once per reload;
- the HTTP and metrics faces share one front `ssl.SSLContext` whose server-name
  callback (run for every handshake, with or without SNI) hands the connection the
  context built at the last reload.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

import metrics
from registry.crypto import certificates
from registry.crypto.certificates import CertificateError, PemPair

log = logging.getLogger("idnode.tls")
StubT = TypeVar("StubT")

# The TLS versions and ciphers the faces accept: TLS 1.2 (AEAD suites) and 1.3.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True)
class ServerTls:
    """A listener's certificate and key files, and whom it asks for a client certificate."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""  # verify client certificates against these CAs
    require_client_cert: bool = False  # refuse a handshake without one (needs client_ca_file)


@dataclass(frozen=True)
class ClientTls:
    """How the node or a command-line client verifies a server, and what it presents."""

    ca_file: str = ""  # trusted CAs (PEM); empty: the system's roots
    cert_file: str = ""  # a client certificate to present (mutual TLS), with key_file
    key_file: str = ""
    server_name: str = ""  # the name to verify instead of the address's host


def client_tls_if_wanted(
    tls: bool, ca_file: str = "", cert_file: str = "", key_file: str = "", server_name: str = ""
) -> ClientTls | None:
    """TLS when `tls` or any of a CA file, a client certificate or a name to verify is
    given (each only makes sense with it); None for a plain channel."""
    if not (tls or ca_file or cert_file or server_name):
        return None
    return ClientTls(ca_file, cert_file, key_file, server_name)


class CertificateSource:
    """One listener's PEM pair; `reload()` reads the files again for new handshakes.

    Raises CertificateError from the constructor when the files cannot be used.
    """

    def __init__(self, tls: ServerTls, listener: str = "") -> None:
        self.tls = tls
        self.listener = listener  # "grpc", "http", "metrics": labels the expiry gauge
        self._lock = threading.Lock()
        self.generation = 0
        self.pair, self._client_ca = self._read()
        self._context = self._build_context()
        self._front: ssl.SSLContext | None = None
        self._show_expiry()

    def _show_expiry(self) -> None:
        if self.listener:
            expiry = self.pair.not_after.timestamp()
            metrics.TLS_CERTIFICATE_EXPIRY.labels(self.listener).set(expiry)

    def _read(self) -> tuple[PemPair, bytes | None]:
        pair = certificates.read_pair(self.tls.cert_file, self.tls.key_file)
        client_ca = None
        if self.tls.client_ca_file:
            client_ca = certificates.read_pem(self.tls.client_ca_file, "client CA")
            certificates.load_certificates(client_ca, self.tls.client_ca_file)
        elif self.tls.require_client_cert:
            raise CertificateError("requiring client certificates needs a client CA file")
        return pair, client_ca

    def reload(self) -> bool:
        """Read the files again; True when the pair changed. A pair that cannot be used is
        logged and the current one kept (it raises nothing: the node serves on)."""
        try:
            pair, client_ca = self._read()
        except CertificateError as error:
            log.error("TLS reload failed; keeping the current certificate: %s", error)
            return False
        with self._lock:
            if pair == self.pair and client_ca == self._client_ca:
                return False
            self.pair, self._client_ca = pair, client_ca
            self._context = self._build_context()
            self.generation += 1
        self._show_expiry()
        log.info(
            "TLS certificate reloaded",
            extra={"cert_file": self.tls.cert_file, "fingerprint": pair.fingerprint,
                   "not_after": pair.not_after.isoformat()},
        )  # fmt: skip
        return True

    # gRPC -----------------------------------------------------------------------

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for one port (each port asks its own fetcher)."""
        seen = [self.generation]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # Called before every handshake on this port: cheap unless a reload happened.
            if self.generation == seen[0]:
                return None
            with self._lock:
                seen[0] = self.generation
                return self._grpc_configuration()

        with self._lock:
            initial = self._grpc_configuration()
        return grpc.dynamic_ssl_server_credentials(
            initial,
            fetch,  # type: ignore[arg-type]  # None means "no change", as grpc documents
            require_client_authentication=self.tls.require_client_cert,
        )

    def _grpc_configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.pair.key_pem, self.pair.cert_pem)], root_certificates=self._client_ca
        )

    # ssl (HTTP, metrics) ------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """The front context to serve with: every handshake takes the newest pair."""
        with self._lock:
            if self._front is None:
                self._front = self._build_context()
                self._front.sni_callback = self._choose
            return self._front

    def _choose(self, connection: ssl.SSLObject, name: str | None, front: ssl.SSLContext) -> None:
        del name, front
        connection.context = self._context

    def _build_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = MINIMUM_VERSION
        with _pem_file(self.pair.cert_pem + b"\n" + self.pair.key_pem) as path:
            context.load_cert_chain(path)
        if self._client_ca is not None:
            context.load_verify_locations(cadata=self._client_ca.decode("ascii", "replace"))
            required = self.tls.require_client_cert
            context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
        return context


@contextlib.contextmanager
def _pem_file(data: bytes) -> Iterator[str]:
    """A path the ssl module can load `data` from, without writing a key to a disk: an
    anonymous memory file (Linux); else a private (0600) temporary file, removed at once."""
    descriptor = -1
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):  # a system-call filter may refuse it
            descriptor = os.memfd_create("idnode-tls", os.MFD_CLOEXEC)
    if descriptor >= 0:
        try:
            os.write(descriptor, data)
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    import tempfile

    descriptor, path = tempfile.mkstemp(prefix="idnode-tls-")
    try:
        os.write(descriptor, data)
        os.close(descriptor)
        yield path
    finally:
        os.unlink(path)


# Clients -----------------------------------------------------------------------------


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """gRPC channel credentials that verify the server (and present a client certificate
    when one is configured). Raises CertificateError naming a file that cannot be used."""
    roots = None
    if tls.ca_file:
        roots = certificates.read_pem(tls.ca_file, "CA")
        certificates.load_certificates(roots, tls.ca_file)
    key = cert = None
    if tls.cert_file or tls.key_file:
        if not (tls.cert_file and tls.key_file):
            raise CertificateError("a client certificate needs both its cert file and key file")
        pair = certificates.read_pair(tls.cert_file, tls.key_file)
        key, cert = pair.key_pem, pair.cert_pem
    return grpc.ssl_channel_credentials(roots, key, cert)


def channel_options(tls: ClientTls | None) -> list[tuple[str, str | int]]:
    """Options a secure channel needs besides its credentials: the name to verify."""
    if tls is None or not tls.server_name:
        return []
    return [("grpc.ssl_target_name_override", tls.server_name)]


def open_channel(
    address: str,
    tls: ClientTls | None,
    options: list[tuple[str, str | int]] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.Channel:
    """A channel to `address`: verified TLS when `tls` is given, else plain. The files of
    `tls` are read now, unless `credentials` made from them earlier are passed.

    Raises CertificateError naming a file that cannot be used.
    """
    chosen = list(options or [])
    if tls is None:
        return grpc.insecure_channel(address, options=chosen)
    return grpc.secure_channel(
        address, credentials or channel_credentials(tls), options=chosen + channel_options(tls)
    )


class SiteStubs(Generic[StubT]):
    """Stubs on channels to the gRPC sites records name, one per (address, TLS or not),
    opened on first use with `options`; TLS ones verified against `tls`'s CAs (read once,
    here). Past `limit` channels the least recently used is closed: a call on a stub
    handed out before then raises ValueError (closed channel). Stubs are made here, under
    the lock, because grpcio crashes the process when a stub is made on a closed channel.
    Thread-safe.

    Raises CertificateError naming a file of `tls` that cannot be used."""

    def __init__(
        self,
        stub: Callable[[grpc.Channel], StubT],
        tls: ClientTls | None,
        limit: int,
        options: list[tuple[str, str | int]] | None = None,
    ) -> None:
        self._stub = stub
        self._tls = tls or ClientTls()
        self._credentials = channel_credentials(self._tls)
        self._limit = limit
        self._options = options
        self._open: OrderedDict[tuple[str, bool], tuple[grpc.Channel, StubT]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, address: str, tls: bool) -> StubT:
        key = (address, tls)
        with self._lock:
            found = self._open.get(key)
            if found is not None:
                self._open.move_to_end(key)
                return found[1]
            if len(self._open) >= self._limit:
                self._open.popitem(last=False)[1][0].close()
            channel = open_channel(
                address, self._tls if tls else None, self._options, self._credentials
            )
            stub = self._stub(channel)
            self._open[key] = (channel, stub)
            return stub

    def retain(self, keep: set[tuple[str, bool]]) -> None:
        """Close the channels to sites not in `keep` (address, TLS or not)."""
        with self._lock:
            for key in [key for key in self._open if key not in keep]:
                self._open.pop(key)[0].close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)  # channels open

    def close(self) -> None:
        self.retain(set())


# Peers ------------------------------------------------------------------------------


def peer_fingerprint(context: grpc.ServicerContext) -> str:
    """The SHA-256 fingerprint of the client certificate of a call, "" without one."""
    found = context.auth_context().get("x509_pem_cert")
    pem = found[0] if isinstance(found, list) and found else found
    if not isinstance(pem, bytes) or not pem:
        return ""
    try:
        return certificates.fingerprint_of_pem(pem, "client certificate")
    except CertificateError:
        return ""


def is_loopback(host: str) -> bool:
    """True for a loopback address or `localhost`; a wildcard or a name is not."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False
