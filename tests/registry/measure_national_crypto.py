"""SM2 implementations compared: speed, the GB/T 32918.5 example, signatures exchanged with OpenSSL.

    .venv/bin/pip install -e '.[smchoice]'   # the candidates from PyPI
    .venv/bin/python -m tests.registry.measure_national_crypto [--rounds 5] [--seconds 0.5]

Each round times every candidate's signing and verification of a 200-byte message (the
size of a checkpoint), one after the other, so that the machine's load falls on all
alike; the table gives medians with the range over rounds, and the ratio to the node's
own implementation (OpenSSL through registry.crypto) in the same round. A candidate
that does not import is listed with the reason. Correctness: the candidate verifies the
standard's example signature, OpenSSL verifies the candidate's signatures, and the
candidate verifies OpenSSL's. SM3 is timed the same way for the node's two backends.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from registry.crypto import sm2, sm3
from tests.registry.test_national_crypto import PART5

MESSAGE = os.urandom(200)
ID = sm2.DEFAULT_ID
STANDARD_POINT = PART5.point
STANDARD_SIGNATURE = PART5.r.to_bytes(32, "big") + PART5.s.to_bytes(32, "big")


@dataclass
class Candidate:
    """Sign and verify with raw r || s signatures, for one key pair given as raw bytes."""

    name: str
    sign: Callable[[bytes], bytes]
    verify: Callable[[bytes, bytes, bytes], bool]  # point, message, signature


def _idnode(key: sm2.PrivateKey) -> Candidate:
    return Candidate(
        "idnode (OpenSSL 3 via ctypes)",
        key.sign,
        lambda point, message, signature: sm2.PublicKey(point).verify(message, signature),
    )


def _gmssl(scalar: bytes, point: bytes) -> Candidate:
    from gmssl import sm2 as gm

    signer = gm.CryptSM2(private_key=scalar.hex(), public_key=point[1:].hex())

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        checker = gm.CryptSM2(private_key="", public_key=public[1:].hex())
        return bool(checker.verify_with_sm3(signature.hex(), message))

    return Candidate(
        "gmssl (pure Python)", lambda m: bytes.fromhex(signer.sign_with_sm3(m)), verify
    )


def _gmalg(scalar: bytes, point: bytes) -> Candidate:
    import gmalg

    signer = gmalg.SM2(sk=scalar, uid=ID, pk=point)

    def sign(message: bytes) -> bytes:
        r, s = signer.sign(message)
        return bytes(r.rjust(32, b"\x00") + s.rjust(32, b"\x00"))

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        return bool(gmalg.SM2(uid=ID, pk=public).verify(message, signature[:32], signature[32:]))

    return Candidate("gmalg (pure Python)", sign, verify)


def _snowland(scalar: bytes, point: bytes) -> Candidate:
    from pysmx.SM2 import Sign, Verify

    def sign(message: bytes) -> bytes:
        k = os.urandom(32).hex()
        return bytes(Sign(message, scalar, k, 64, uid=ID))

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        return bool(Verify(signature, message, public[1:], 64, uid=ID))

    return Candidate("snowland-smx (pure Python)", sign, verify)


def _smcryptopy(scalar: bytes, point: bytes) -> Candidate:
    from smcryptopy import sm2 as smc

    # It takes DER, and aborts the whole process (a Rust panic) when given anything else:
    # r || s is converted here first. A public key is x || y in hex, without the 04.
    def sign(message: bytes) -> bytes:
        return sm2.from_der(bytes(smc.sign(ID, message, scalar.hex())))

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        return bool(smc.verify(ID, message, sm2.to_der(signature), public[1:].hex()))

    return Candidate("smcryptopy (Rust)", sign, verify)


def _gmssl_fast(scalar: bytes, point: bytes) -> Candidate:
    import gmssl_fast

    signer = gmssl_fast.SM2(private_key=scalar.hex(), public_key=point.hex())

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        return bool(gmssl_fast.SM2(public_key=public.hex()).verify(message, signature))

    return Candidate("gmssl-fast (GmSSL, C)", lambda m: bytes(signer.sign(m)), verify)


def _tongsuopy(scalar: bytes, point: bytes) -> Candidate:
    from tongsuopy.crypto import hashes
    from tongsuopy.crypto.asymciphers import ec

    def public_of(raw: bytes) -> Any:
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big"), ec.SM2()
        )
        return numbers.public_key()

    private = ec.EllipticCurvePrivateNumbers(
        int.from_bytes(scalar, "big"), public_of(point).public_numbers()
    ).private_key()

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        try:
            public_of(public).verify(sm2.to_der(signature), message, ec.ECDSA(hashes.SM3()))
        except Exception:
            return False
        return True

    return Candidate(
        "tongsuopy (Tongsuo, C)",
        lambda m: sm2.from_der(private.sign(m, ec.ECDSA(hashes.SM3()))),
        verify,
    )


FACTORIES = [_gmssl, _gmalg, _snowland, _smcryptopy, _gmssl_fast, _tongsuopy]


def _rate(operation: Callable[[], object], seconds: float) -> float:
    """Microseconds per call over about `seconds`."""
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        operation()
        calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return (now - started) / calls * 1e6


def _correctness(candidate: Candidate, ours: Candidate, point: bytes) -> str:
    notes = []
    try:
        notes.append("example ok" if candidate.verify(
            STANDARD_POINT, PART5.message, STANDARD_SIGNATURE
        ) else "EXAMPLE FAILS")  # fmt: skip
        theirs = candidate.sign(MESSAGE)
        notes.append("OpenSSL verifies it" if ours.verify(point, MESSAGE, theirs) else
                     "OPENSSL REJECTS ITS SIGNATURES")  # fmt: skip
        notes.append("verifies OpenSSL" if candidate.verify(point, MESSAGE, ours.sign(MESSAGE))
                     else "REJECTS OPENSSL'S SIGNATURES")  # fmt: skip
    except Exception as error:
        notes.append(f"error: {type(error).__name__}: {error}"[:80])
    return ", ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per operation per round")
    args = parser.parse_args()
    key = sm2.PrivateKey.generate()
    point = key.public_key.point
    from registry.crypto import libcrypto

    scalar = libcrypto.private_scalar(key._key)
    ours = _idnode(key)
    candidates = [ours]
    for factory in FACTORIES:
        try:
            candidates.append(factory(scalar, point))
        except Exception as error:
            print(f"- {factory.__name__[1:]}: not measured ({type(error).__name__}: {error})")
    notes = {c.name: _correctness(c, ours, point) for c in candidates}
    signature = {c.name: c.sign(MESSAGE) for c in candidates}
    times: dict[str, dict[str, list[float]]] = {
        c.name: {"sign": [], "verify": []} for c in candidates
    }
    for _round in range(args.rounds):
        for c in candidates:
            times[c.name]["sign"].append(_rate(partial(c.sign, MESSAGE), args.seconds))
            verify = partial(c.verify, point, MESSAGE, signature[c.name])
            times[c.name]["verify"].append(_rate(verify, args.seconds))
    print(
        "| implementation | sign µs: median (min–max) | × idnode | verify µs | × idnode | correctness |"
    )
    print("|---|---|---|---|---|---|")
    for c in candidates:
        cells = []
        for op in ("sign", "verify"):
            mine, base = times[c.name][op], times[ours.name][op]
            ratios = [m / b for m, b in zip(mine, base, strict=True)]
            cells.append(f"{statistics.median(mine):,.0f} ({min(mine):,.0f}–{max(mine):,.0f})")
            cells.append(f"{statistics.median(ratios):.1f}×")
        print(f"| {c.name} | {' | '.join(cells)} | {notes[c.name]} |")
    print()
    for size in (64, 200, 1000):
        data = os.urandom(size)
        row = []
        for name, function in sorted(sm3.BACKENDS.items()):
            spent = [_rate(partial(function, data), args.seconds / 2) for _ in range(args.rounds)]
            row.append(
                f"{name} {statistics.median(spent):.2f} µs ({min(spent):.2f}–{max(spent):.2f})"
            )
        print(f"SM3 of {size} bytes: " + "; ".join(row))


if __name__ == "__main__":
    main()
