"""SM2 signatures (GB/T 32918), with SM3 and the default distinguishing ID of GM/T 0009.

Keys and signatures cross the wire in fixed forms: a public key is the uncompressed point
(65 bytes) or its SubjectPublicKeyInfo PEM (what `openssl pkey -pubout` prints); a
signature is r || s (64 bytes). OpenSSL does the arithmetic (registry.crypto.libcrypto).
The node's private key is a PKCS#8 PEM file, 0600, that `openssl pkey` reads too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re

from registry.crypto import libcrypto

DEFAULT_ID = b"1234567812345678"  # GM/T 0009-2012 section 10
POINT_BYTES = 65
SCALAR_BYTES = 32
SIGNATURE_BYTES = 64
FILE_MODE = 0o600
MAX_PEM_BYTES = 4096  # a PKCS#8 SM2 key is ~240 bytes of PEM
# SubjectPublicKeyInfo of an SM2 key: id-ecPublicKey, the SM2 curve (1.2.156.10197.1.301),
# a BIT STRING holding the point. Every SM2 public key has exactly this header.
SPKI_HEADER = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
_PEM_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----")

LibcryptoError = libcrypto.LibcryptoError


class SM2Error(ValueError):
    """A key or signature that cannot be used; the message says what was wrong with it."""


class PublicKey:
    """An SM2 public key; `verify` checks signatures made by its private key."""

    def __init__(self, point: bytes) -> None:
        """Raises SM2Error when `point` is not an uncompressed point on the SM2 curve."""
        if len(point) != POINT_BYTES or point[0] != 0x04:
            raise SM2Error(f"an SM2 public key is {POINT_BYTES} bytes starting with 04")
        try:
            self._key = libcrypto.from_components(libcrypto.named_group(), point, b"")
        except LibcryptoError as error:
            raise SM2Error(f"not a point on the SM2 curve ({error})") from None
        self.point = point

    @classmethod
    def from_pem(cls, pem: bytes) -> PublicKey:
        """From SubjectPublicKeyInfo PEM. Raises SM2Error."""
        found = _PEM_PUBLIC.search(pem[:MAX_PEM_BYTES])
        if found is None:
            raise SM2Error("no -----BEGIN PUBLIC KEY----- block")
        try:
            der = base64.b64decode(b"".join(found.group(1).split()), validate=True)
        except binascii.Error:
            raise SM2Error("the PUBLIC KEY block is not base64") from None
        if not der.startswith(SPKI_HEADER) or len(der) != len(SPKI_HEADER) + POINT_BYTES:
            raise SM2Error("the PUBLIC KEY block is not an SM2 public key")
        return cls(der[len(SPKI_HEADER) :])

    @classmethod
    def from_text(cls, text: bytes) -> PublicKey:
        """From PEM, or the point in hex (130 digits). Raises SM2Error."""
        stripped = text.strip()
        if stripped.startswith(b"-----"):
            return cls.from_pem(stripped)
        try:
            point = bytes.fromhex(stripped[: 2 * POINT_BYTES + 2].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise SM2Error("an SM2 public key is PEM or 130 hex digits") from None
        return cls(point)

    def pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM, 64 characters a line (as OpenSSL writes it)."""
        text = base64.b64encode(SPKI_HEADER + self.point)
        lines = b"".join(text[i : i + 64] + b"\n" for i in range(0, len(text), 64))
        return b"-----BEGIN PUBLIC KEY-----\n" + lines + b"-----END PUBLIC KEY-----\n"

    def verify(
        self, message: bytes, signature: bytes, distinguishing_id: bytes = DEFAULT_ID
    ) -> bool:
        """Whether `signature` (r || s) signs `message` under this key. Never raises for a
        malformed signature: that is a signature that does not verify."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        return libcrypto.verify(self._key, message, to_der(signature), distinguishing_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.point == self.point

    def __hash__(self) -> int:
        return hash(self.point)


class PrivateKey:
    """An SM2 private key: signs with a fresh random k each time (OpenSSL's generator)."""

    def __init__(self, key: libcrypto.Key) -> None:
        self._key = key
        self.public_key = PublicKey(libcrypto.public_point(key))

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(libcrypto.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> PrivateKey:
        """From PKCS#8 PEM. Raises SM2Error."""
        try:
            return cls(libcrypto.read_private_pem(pem[:MAX_PEM_BYTES]))
        except LibcryptoError as error:
            raise SM2Error(str(error)) from None

    @classmethod
    def from_scalar(cls, scalar: bytes, point: bytes) -> PrivateKey:
        """From the raw private scalar and its public point. Raises SM2Error."""
        try:
            return cls(libcrypto.from_components(libcrypto.named_group(), point, scalar))
        except LibcryptoError as error:
            raise SM2Error(str(error)) from None

    def pem(self) -> bytes:
        return libcrypto.write_private_pem(self._key)

    def sign(self, message: bytes, distinguishing_id: bytes = DEFAULT_ID) -> bytes:
        """The signature of `message`, r || s."""
        return from_der(libcrypto.sign(self._key, message, distinguishing_id))


def to_der(signature: bytes) -> bytes:
    """r || s as DER (SEQUENCE of two INTEGERs), the form OpenSSL reads."""
    body = b"".join(_der_integer(signature[i : i + SCALAR_BYTES]) for i in (0, SCALAR_BYTES))
    return b"\x30" + bytes([len(body)]) + body


def _der_integer(value: bytes) -> bytes:
    value = value.lstrip(b"\x00") or b"\x00"
    if value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + bytes([len(value)]) + value


def from_der(der: bytes) -> bytes:
    """OpenSSL's DER signature as r || s. Raises SM2Error for anything else."""
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise SM2Error("not a DER signature")
    parts = []
    at = 2
    for _ in range(2):
        if der[at] != 0x02 or at + 2 + der[at + 1] > len(der):
            raise SM2Error("not a DER signature")
        number = der[at + 2 : at + 2 + der[at + 1]].lstrip(b"\x00")
        if len(number) > SCALAR_BYTES:
            raise SM2Error("a signature integer longer than 32 bytes")
        parts.append(number.rjust(SCALAR_BYTES, b"\x00"))
        at += 2 + der[at + 1]
    if at != len(der):
        raise SM2Error("not a DER signature")
    return parts[0] + parts[1]


def read_key_file(path: str) -> PrivateKey:
    """The private key in `path`. Raises SM2Error naming the file and the cause."""
    try:
        with open(path, "rb") as handle:
            pem = handle.read(MAX_PEM_BYTES + 1)
    except OSError as error:
        raise SM2Error(f"cannot read the SM2 key file {path}: {error.strerror}") from None
    if len(pem) > MAX_PEM_BYTES:
        raise SM2Error(f"the SM2 key file {path} is larger than {MAX_PEM_BYTES} bytes")
    try:
        return PrivateKey.from_pem(pem)
    except SM2Error as error:
        raise SM2Error(f"the SM2 key file {path}: {error}") from None


def ensure_key_file(path: str) -> tuple[PrivateKey, bool]:
    """The private key in `path`, made now (0600) when there is none; also whether it was
    made. Two processes doing this at once end up with the same key: the file appears
    whole or not at all (a hard link of a finished temporary file). Raises SM2Error."""
    if os.path.exists(path):
        return read_key_file(path), False
    key = PrivateKey.generate()
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask
            handle.write(key.pem())
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return read_key_file(path), False  # another process made it first
    except OSError as error:
        raise SM2Error(f"cannot write the SM2 key file {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    _sync_directory(os.path.dirname(path) or ".")
    return key, True


def _sync_directory(path: str) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
