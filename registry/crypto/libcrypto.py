"""OpenSSL's libcrypto (3.0 or later) through ctypes: SM2 keys and signatures (SM3 inside).

The `cryptography` library has SM3 and SM4 but no SM2; OpenSSL's default provider has
all three, and the interpreter has already loaded libcrypto for its `ssl` and `hashlib`
modules, so this binds the few EVP calls SM2 needs. ctypes lets go of the interpreter
lock during each call, so a signature does not hold up the process's other threads.
Every pointer this module gets from OpenSSL is freed in the function that got it, or
owned by a `_Key` that frees it once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MIN_VERSION = 0x30000000  # OpenSSL 3.0.0: EVP_PKEY_fromdata, SM2 as a key type of its own
SM2 = b"SM2"
SM3 = b"SM3"
_LIBRARY_NAMES = ("libcrypto.so.3", "libcrypto.3.dylib")
# OSSL_PARAM data types and key selections (openssl/core.h, openssl/evp.h).
_OCTET_STRING = 5
_UTF8_STRING = 4
_UNSIGNED_INTEGER = 2
_PUBLIC_KEY = 0x86  # EVP_PKEY_PUBLIC_KEY
_KEYPAIR = 0x87  # EVP_PKEY_KEYPAIR
_BIO_CTRL_INFO = 3  # BIO_get_mem_data
_MAX_SIGNATURE_BYTES = 80  # DER of two 256-bit integers: 72 at most
_ERROR_TEXT_BYTES = 256


class LibcryptoError(RuntimeError):
    """OpenSSL refused an operation; the message carries OpenSSL's own reason."""


class _Param(ctypes.Structure):
    """OSSL_PARAM (openssl/core.h): a key, a type and a buffer."""

    _fields_ = [
        ("key", ctypes.c_char_p),
        ("data_type", ctypes.c_uint),
        ("data", ctypes.c_void_p),
        ("data_size", ctypes.c_size_t),
        ("return_size", ctypes.c_size_t),
    ]


_UNMODIFIED = ctypes.c_size_t(-1).value  # OSSL_PARAM_UNMODIFIED
_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "OpenSSL_version_num": (ctypes.c_ulong, []),
    "ERR_get_error": (ctypes.c_ulong, []),
    "ERR_clear_error": (None, []),
    "ERR_error_string_n": (None, [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]),
    "EVP_PKEY_CTX_new_from_name": (_P, [_P, ctypes.c_char_p, ctypes.c_char_p]),
    "EVP_PKEY_CTX_free": (None, [_P]),
    "EVP_PKEY_keygen_init": (ctypes.c_int, [_P]),
    "EVP_PKEY_generate": (ctypes.c_int, [_P, _PP]),
    "EVP_PKEY_fromdata_init": (ctypes.c_int, [_P]),
    "EVP_PKEY_fromdata": (ctypes.c_int, [_P, _PP, ctypes.c_int, ctypes.POINTER(_Param)]),
    "EVP_PKEY_free": (None, [_P]),
    "EVP_PKEY_is_a": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "EVP_PKEY_get_octet_string_param": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)],
    ),
    "EVP_PKEY_get_bn_param": (ctypes.c_int, [_P, ctypes.c_char_p, _PP]),
    "BN_bn2binpad": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int]),
    "BN_clear_free": (None, [_P]),
    "EVP_MD_CTX_new": (_P, []),
    "EVP_MD_CTX_free": (None, [_P]),
    "EVP_DigestSignInit_ex": (
        ctypes.c_int,
        [_P, _PP, ctypes.c_char_p, _P, ctypes.c_char_p, _P, ctypes.POINTER(_Param)],
    ),
    "EVP_PKEY_CTX_set_params": (ctypes.c_int, [_P, ctypes.POINTER(_Param)]),
    "EVP_DigestSign": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p, ctypes.c_size_t],
    ),
    "EVP_DigestVerifyInit_ex": (
        ctypes.c_int,
        [_P, _PP, ctypes.c_char_p, _P, ctypes.c_char_p, _P, ctypes.POINTER(_Param)],
    ),
    "EVP_DigestVerify": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t],
    ),
    "BIO_new_mem_buf": (_P, [ctypes.c_char_p, ctypes.c_int]),
    "BIO_s_mem": (_P, []),
    "BIO_new": (_P, [_P]),
    "BIO_free": (ctypes.c_int, [_P]),
    "BIO_ctrl": (ctypes.c_long, [_P, ctypes.c_int, ctypes.c_long, _PP]),
    "PEM_read_bio_PrivateKey": (_P, [_P, _P, _P, _P]),
    "PEM_write_bio_PrivateKey": (
        ctypes.c_int,
        [_P, _P, _P, ctypes.c_char_p, ctypes.c_int, _P, _P],
    ),
}


def _load() -> Any:
    names = [*_LIBRARY_NAMES, ctypes.util.find_library("crypto") or ""]
    failures = []
    for name in filter(None, names):
        try:
            library = ctypes.CDLL(name)
        except OSError as error:
            failures.append(str(error))
            continue
        if not hasattr(library, "EVP_PKEY_fromdata"):
            failures.append(f"{name} is older than OpenSSL 3.0")
            continue
        for function, (restype, argtypes) in _SIGNATURES.items():
            bound = getattr(library, function)
            bound.restype = restype
            bound.argtypes = argtypes
        if library.OpenSSL_version_num() < MIN_VERSION:
            failures.append(f"{name} is older than OpenSSL 3.0")
            continue
        return library
    raise LibcryptoError(
        "SM2 needs OpenSSL's libcrypto 3.0 or later (Debian: libssl3): " + "; ".join(failures)
    )


_lib: Any = None
_loading = threading.Lock()


def lib() -> Any:
    """The bound library, loaded on first use. Raises LibcryptoError."""
    global _lib
    if _lib is None:
        with _loading:
            if _lib is None:
                _lib = _load()
    return _lib


def _failure(what: str) -> LibcryptoError:
    """The error for a failed call, with OpenSSL's queued reason (the queue is emptied)."""
    library = lib()
    code = library.ERR_get_error()
    reason = ""
    if code:
        text = ctypes.create_string_buffer(_ERROR_TEXT_BYTES)
        library.ERR_error_string_n(code, text, _ERROR_TEXT_BYTES)
        reason = ": " + text.value.decode("ascii", "replace")
    library.ERR_clear_error()
    return LibcryptoError(f"{what} failed{reason}")


def _params(*items: tuple[bytes, int, bytes]) -> tuple[Any, list[Any]]:
    """An OSSL_PARAM array ending in the empty element; the buffers are returned too, so
    that the caller keeps them alive for as long as OpenSSL may read them."""
    array = (_Param * (len(items) + 1))()
    buffers = []
    for slot, (key, data_type, data) in zip(array, items, strict=False):
        buffer = ctypes.create_string_buffer(data, len(data))
        buffers.append(buffer)
        slot.key, slot.data_type = key, data_type
        slot.data, slot.data_size = ctypes.cast(buffer, ctypes.c_void_p), len(data)
        slot.return_size = _UNMODIFIED
    return array, buffers


class Key:
    """An SM2 key held by OpenSSL (an EVP_PKEY), private or public only."""

    def __init__(self, pointer: int, private: bool) -> None:
        self._pointer: int | None = pointer
        self.private = private

    @property
    def pointer(self) -> int:
        if self._pointer is None:
            raise LibcryptoError("the key was freed")
        return self._pointer

    def free(self) -> None:
        if self._pointer is not None:
            lib().EVP_PKEY_free(self._pointer)
            self._pointer = None

    def __del__(self) -> None:
        if _lib is not None:
            self.free()


@contextmanager
def _pkey_ctx() -> Iterator[int]:
    library = lib()
    ctx = library.EVP_PKEY_CTX_new_from_name(None, SM2, None)
    if not ctx:
        raise _failure("EVP_PKEY_CTX_new_from_name(SM2)")
    try:
        yield ctx
    finally:
        library.EVP_PKEY_CTX_free(ctx)


def generate() -> Key:
    """A new SM2 key pair from OpenSSL's random generator. Raises LibcryptoError."""
    library = lib()
    with _pkey_ctx() as ctx:
        pkey = ctypes.c_void_p()
        if (
            library.EVP_PKEY_keygen_init(ctx) != 1
            or library.EVP_PKEY_generate(ctx, ctypes.byref(pkey)) != 1
        ):
            raise _failure("SM2 key generation")
    return Key(_checked(pkey), private=True)


def _checked(pkey: ctypes.c_void_p) -> int:
    if not pkey.value:
        raise _failure("SM2 key")
    return int(pkey.value)


def from_components(group: list[tuple[bytes, int, bytes]], public: bytes, private: bytes) -> Key:
    """A key from its raw parts: `group` as OSSL_PARAM items (the group name, or explicit
    curve parameters), the public point (0x04 || x || y), the private scalar (big-endian,
    empty for a public key). Raises LibcryptoError when OpenSSL refuses them."""
    items = [*group, (b"pub", _OCTET_STRING, public)]
    if private:
        items.append((b"priv", _UNSIGNED_INTEGER, private[::-1]))  # native: little-endian
    array, _buffers = _params(*items)
    library = lib()
    with _pkey_ctx() as ctx:
        pkey = ctypes.c_void_p()
        selection = _KEYPAIR if private else _PUBLIC_KEY
        if (
            library.EVP_PKEY_fromdata_init(ctx) != 1
            or library.EVP_PKEY_fromdata(ctx, ctypes.byref(pkey), selection, array) != 1
        ):
            raise _failure("SM2 key import")
    return Key(_checked(pkey), private=bool(private))


def named_group() -> list[tuple[bytes, int, bytes]]:
    """The OSSL_PARAM items of the SM2 curve by name (GB/T 32918.5)."""
    return [(b"group", _UTF8_STRING, SM2)]


def public_point(key: Key) -> bytes:
    """The public key as an uncompressed point, 0x04 || x || y."""
    buffer = ctypes.create_string_buffer(133)
    size = ctypes.c_size_t(0)
    if (
        lib().EVP_PKEY_get_octet_string_param(
            key.pointer, b"encoded-pub-key", buffer, len(buffer), ctypes.byref(size)
        )
        != 1
    ):
        raise _failure("reading the SM2 public key")
    return buffer.raw[: size.value]


def private_scalar(key: Key) -> bytes:
    """The private scalar, 32 bytes big-endian."""
    library = lib()
    number = ctypes.c_void_p()
    if library.EVP_PKEY_get_bn_param(key.pointer, b"priv", ctypes.byref(number)) != 1:
        raise _failure("reading the SM2 private key")
    try:
        out = ctypes.create_string_buffer(32)
        if library.BN_bn2binpad(number, out, 32) != 32:
            raise _failure("encoding the SM2 private key")
        return out.raw
    finally:
        library.BN_clear_free(number)


def sign(key: Key, message: bytes, distinguishing_id: bytes) -> bytes:
    """The SM2 signature (DER: SEQUENCE of r and s) of `message` with SM3 and the signer's
    distinguishing ID, a fresh random k each time. Raises LibcryptoError."""
    library = lib()
    params, _buffers = _params((b"distid", _OCTET_STRING, distinguishing_id))
    ctx = library.EVP_MD_CTX_new()
    if not ctx:
        raise _failure("EVP_MD_CTX_new")
    try:
        out = ctypes.create_string_buffer(_MAX_SIGNATURE_BYTES)
        size = ctypes.c_size_t(len(out))
        pctx = ctypes.c_void_p()
        if (
            library.EVP_DigestSignInit_ex(
                ctx, ctypes.byref(pctx), SM3, None, None, key.pointer, None
            )
            != 1
            or library.EVP_PKEY_CTX_set_params(pctx, params) != 1
        ):
            raise _failure("SM2 signing")
        if library.EVP_DigestSign(ctx, out, ctypes.byref(size), message, len(message)) != 1:
            raise _failure("SM2 signing")
        return out.raw[: size.value]
    finally:
        library.EVP_MD_CTX_free(ctx)


def verify(key: Key, message: bytes, signature: bytes, distinguishing_id: bytes) -> bool:
    """Whether `signature` (DER) is `key`'s SM2 signature of `message`. Raises
    LibcryptoError only when OpenSSL cannot run the check at all."""
    library = lib()
    params, _buffers = _params((b"distid", _OCTET_STRING, distinguishing_id))
    ctx = library.EVP_MD_CTX_new()
    if not ctx:
        raise _failure("EVP_MD_CTX_new")
    try:
        pctx = ctypes.c_void_p()
        if (
            library.EVP_DigestVerifyInit_ex(
                ctx, ctypes.byref(pctx), SM3, None, None, key.pointer, None
            )
            != 1
            or library.EVP_PKEY_CTX_set_params(pctx, params) != 1
        ):
            raise _failure("SM2 verification")
        found = library.EVP_DigestVerify(ctx, signature, len(signature), message, len(message))
        library.ERR_clear_error()  # a bad signature queues a reason nobody reads
        return bool(found == 1)
    finally:
        library.EVP_MD_CTX_free(ctx)


def read_private_pem(pem: bytes) -> Key:
    """A private key from PKCS#8 PEM (what `openssl genpkey -algorithm SM2` writes).
    Raises LibcryptoError for anything else, or a key that is not SM2."""
    library = lib()
    bio = library.BIO_new_mem_buf(pem, len(pem))
    if not bio:
        raise _failure("BIO_new_mem_buf")
    try:
        pointer = library.PEM_read_bio_PrivateKey(bio, None, None, None)
    finally:
        library.BIO_free(bio)
    if not pointer:
        raise _failure("reading the PEM private key")
    key = Key(pointer, private=True)
    if library.EVP_PKEY_is_a(pointer, SM2) != 1:
        key.free()
        raise LibcryptoError("the PEM private key is not an SM2 key")
    return key


def write_private_pem(key: Key) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    library = lib()
    bio = library.BIO_new(library.BIO_s_mem())
    if not bio:
        raise _failure("BIO_new")
    try:
        if library.PEM_write_bio_PrivateKey(bio, key.pointer, None, None, 0, None, None) != 1:
            raise _failure("writing the PEM private key")
        data = ctypes.c_void_p()
        size = library.BIO_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(data))
        return ctypes.string_at(data, size)
    finally:
        library.BIO_free(bio)
