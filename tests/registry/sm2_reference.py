"""A plain SM2 signature scheme written from GB/T 32918.2, for the tests only.

OpenSSL takes neither a chosen k nor a curve other than SM2's own, so the standards'
examples cannot be signed through it. This implementation can: it reproduces both
published examples exactly, and the tests then hold OpenSSL to it on the SM2 curve
(each verifies the other's signatures). Affine coordinates and no attempt at speed or
constant time: never use it for real keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.crypto import sm3

Point = tuple[int, int] | None  # None: the point at infinity


@dataclass(frozen=True)
class Curve:
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def generator(self) -> Point:
        return (self.gx, self.gy)


def _add(curve: Curve, first: Point, second: Point) -> Point:
    if first is None:
        return second
    if second is None:
        return first
    (x1, y1), (x2, y2) = first, second
    p = curve.p
    if x1 == x2 and (y1 + y2) % p == 0:
        return None
    if first == second:
        slope = (3 * x1 * x1 + curve.a) * pow(2 * y1, -1, p) % p
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (slope * slope - x1 - x2) % p
    return (x3, (slope * (x1 - x3) - y1) % p)


def multiply(curve: Curve, k: int, point: Point) -> Point:
    result: Point = None
    addend = point
    while k:
        if k & 1:
            result = _add(curve, result, addend)
        addend = _add(curve, addend, addend)
        k >>= 1
    return result


def _bytes(value: int) -> bytes:
    return value.to_bytes(32, "big")


def z_value(curve: Curve, distinguishing_id: bytes, public: tuple[int, int]) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
    entl = (len(distinguishing_id) * 8).to_bytes(2, "big")
    parts = (curve.a, curve.b, curve.gx, curve.gy, public[0], public[1])
    return sm3.digest(entl + distinguishing_id + b"".join(_bytes(v) for v in parts))


def digest(curve: Curve, distinguishing_id: bytes, public: tuple[int, int], message: bytes) -> int:
    """e = SM3(Z_A || M) as an integer."""
    return int.from_bytes(sm3.digest(z_value(curve, distinguishing_id, public) + message), "big")


def sign(
    curve: Curve, private: int, distinguishing_id: bytes, message: bytes, k: int
) -> tuple[int, int]:
    public = multiply(curve, private, curve.generator)
    assert public is not None
    e = digest(curve, distinguishing_id, public, message)
    point = multiply(curve, k, curve.generator)
    assert point is not None
    r = (e + point[0]) % curve.n
    s = pow(1 + private, -1, curve.n) * (k - r * private) % curve.n
    return r, s


def verify(
    curve: Curve,
    public: tuple[int, int],
    distinguishing_id: bytes,
    message: bytes,
    signature: tuple[int, int],
) -> bool:
    r, s = signature
    if not (0 < r < curve.n and 0 < s < curve.n):
        return False
    t = (r + s) % curve.n
    if t == 0:
        return False
    point = _add(curve, multiply(curve, s, curve.generator), multiply(curve, t, public))
    if point is None:
        return False
    return (digest(curve, distinguishing_id, public, message) + point[0]) % curve.n == r
