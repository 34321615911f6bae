"""X.509 certificates: read and check a PEM pair, fingerprints for pinning, a local CA for trials.

The `cryptography` library parses and makes certificates; the TLS itself is done by
OpenSSL (the HTTP and metrics faces) and by gRPC's own TLS stack.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_PEM_BYTES = 1 << 20  # a chain of a few certificates is a few KB
FILE_MODE = 0o600
_HEX = re.compile(r"[0-9a-f]{64}")


class CertificateError(ValueError):
    """A certificate or key file cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class PemPair:
    """A certificate chain and its private key, both PEM, checked to belong together."""

    cert_pem: bytes
    key_pem: bytes
    not_after: datetime.datetime  # of the leaf certificate, UTC
    fingerprint: str  # SHA-256 of the leaf certificate, lowercase hex


def read_pem(path: str, what: str = "certificate") -> bytes:
    """The bytes of a PEM file. Raises CertificateError naming `path` and the cause."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PEM_BYTES + 1)
    except OSError as error:
        raise CertificateError(f"cannot read {what} file {path}: {error.strerror}") from None
    if len(data) > MAX_PEM_BYTES:
        raise CertificateError(f"{what} file {path} is larger than {MAX_PEM_BYTES} bytes")
    if b"-----BEGIN" not in data:
        raise CertificateError(f"{what} file {path} is not PEM (no -----BEGIN line)")
    return data


def load_certificates(pem: bytes, path: str = "PEM") -> list[x509.Certificate]:
    """Every certificate in `pem`, leaf first. Raises CertificateError."""
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise CertificateError(f"{path} holds no valid certificate: {error}") from None
    return found


def read_pair(cert_file: str, key_file: str) -> PemPair:
    """Read a certificate chain and its key, and check that the key is the leaf's.

    Raises CertificateError naming the file and what is wrong.
    """
    cert_pem = read_pem(cert_file)
    key_pem = read_pem(key_file, "key")
    leaf = load_certificates(cert_pem, cert_file)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        why = "it is encrypted" if isinstance(error, TypeError) else str(error)
        raise CertificateError(f"key file {key_file} cannot be used: {why}") from None
    public = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if (
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != public
    ):
        raise CertificateError(f"key file {key_file} does not belong to {cert_file}")
    return PemPair(cert_pem, key_pem, leaf.not_valid_after_utc, fingerprint(leaf))


def fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 of the certificate's DER bytes, lowercase hex (what pins record)."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def fingerprint_of_pem(pem: bytes, path: str = "PEM") -> str:
    """The fingerprint of the first (leaf) certificate in `pem`. Raises CertificateError."""
    return fingerprint(load_certificates(pem, path)[0])


def parse_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as people write it (hex, colons or spaces allowed, any case)
    in canonical form. Raises CertificateError."""
    canonical = re.sub(r"[\s:]", "", text).lower()
    if not _HEX.fullmatch(canonical):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise CertificateError(f"{shown!r} is not a SHA-256 fingerprint (64 hex digits)")
    return canonical


# Making certificates: a local CA for trials (`idnode dev-cert`) and for tests --------


@dataclass(frozen=True)
class Issued:
    """A certificate made here and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)


def _validity(
    days: float, not_before: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    return start, start + datetime.timedelta(days=days)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def make_ca(
    common_name: str, days: float = 3650, not_before: datetime.datetime | None = None
) -> Issued:
    """A self-signed certificate authority (ECDSA P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity(days, not_before)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def make_leaf(
    ca: Issued,
    common_name: str,
    hosts: Sequence[str] = (),
    client: bool = False,
    days: float = 825,
    not_before: datetime.datetime | None = None,
) -> Issued:
    """A certificate signed by `ca`: for a server (names and addresses in `hosts`), or
    for a client (`client`: extended key usage clientAuth)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days, not_before)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write_private(path: str, data: bytes) -> None:
    """Write `data` to `path` readable by its owner only (0600), whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(path, FILE_MODE)  # also when the file existed with wider permissions
