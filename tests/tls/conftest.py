"""Real certificates made in the test: a CA, server and client certificates, and strangers."""

from __future__ import annotations

import datetime
import hashlib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.crypto import certificates
from registry.crypto.certificates import Issued
from tests.sync.conftest import secondary as secondary  # the fixture, for the sync over TLS

HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass
class Pki:
    """Files of one test's certificates under `directory`."""

    directory: Path
    ca: Issued

    def write(self, name: str, issued: Issued) -> tuple[str, str]:
        """Write `issued` as NAME.pem and NAME.key; returns their paths."""
        cert, key = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        certificates.write_private(str(cert), issued.cert_pem)
        certificates.write_private(str(key), issued.key_pem)
        return str(cert), str(key)

    @property
    def ca_file(self) -> str:
        return str(self.directory / "ca.pem")

    def server(self, name: str = "server", ca: Issued | None = None) -> tuple[str, str]:
        return self.write(name, certificates.make_leaf(ca or self.ca, name, HOSTS))

    def client(
        self, name: str, ca: Issued | None = None, expired: bool = False
    ) -> tuple[str, str, str]:
        """A client certificate (by `ca`, default the test's CA); returns cert, key, SHA-256."""
        start = None
        if expired:  # valid for a day, a month ago
            start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
        issued = certificates.make_leaf(
            ca or self.ca, name, client=True, days=1 if expired else 30, not_before=start
        )
        cert, key = self.write(name, issued)
        return cert, key, issued.fingerprint


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    ca = certificates.make_ca("test CA")
    made = Pki(directory, ca)
    made.write("ca", ca)
    return made


def served_fingerprint(address: str, ca_file: str, alpn: str = "h2") -> str:
    """The SHA-256 of the certificate a TLS server at HOST:PORT presents to a new
    connection (verified against `ca_file`)."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols([alpn])
    with (
        socket.create_connection((host.strip("[]"), int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host.strip("[]")) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()
