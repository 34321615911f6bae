"""SM3 and SM2 against the standards' own examples, OpenSSL's command line and each other."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.crypto import libcrypto, sm2, sm3
from tests.registry import sm2_reference as ref

# GB/T 32905-2016 (SM3), Appendix A: example 1 ("abc") and example 2 ("abcd" x 16).
SM3_EXAMPLES = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


@dataclass(frozen=True)
class Example:
    """A signature example as the standard prints it."""

    id: bytes
    message: bytes
    d: int  # private key
    x: int  # public key
    y: int
    k: int  # the random number the example signs with
    r: int
    s: int
    z: str = ""  # Z_A, when the standard prints it
    e: int = 0  # SM3(Z_A || M), when the standard prints it

    @property
    def point(self) -> bytes:
        return _point(self.x, self.y)


# GB/T 32918.2-2016 (SM2 part 2, digital signatures), Annex A.2: the example on its
# 256-bit prime test curve, with the values the standard prints along the way. Carried
# from the standard as OpenSSL's test/sm2_internal_test.c and GmSSL's tests quote it.
TEST_CURVE = ref.Curve(
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
)
PART2 = Example(
    id=b"ALICE123@YAHOO.COM",
    message=b"message digest",
    d=0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263,
    x=0x0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A,
    y=0x7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857,
    z="f4a38489e32b45b6f876e3ac2168ca392362dc8f23459c1d1146fc3dbfb7bc9a",
    e=0xB524F552CD82B8B028476E005C377FB19A87E6FC682D48BB5D42E3D9B9EFFE76,
    k=0x6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F,
    r=0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1,
    s=0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7,
)

# GB/T 32918.5-2017 (SM2 part 5, parameters), Annex A: the signature example on the SM2
# curve itself, with the default distinguishing ID of GM/T 0009 (as quoted by OpenSSL's
# test/sm2_internal_test.c).
SM2_CURVE = ref.Curve(
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)
PART5 = Example(
    id=b"1234567812345678",
    message=b"message digest",
    d=0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8,
    x=0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020,
    y=0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13,
    k=0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21,
    r=0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3,
    s=0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA,
)


def _raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


@pytest.mark.parametrize("backend", sorted(sm3.BACKENDS))
@pytest.mark.parametrize(("message", "expected"), SM3_EXAMPLES)
def test_sm3_gives_the_standards_examples(backend: str, message: bytes, expected: str) -> None:
    assert sm3.BACKENDS[backend](message).hex() == expected


def test_sm3_in_use_is_one_of_the_checked_backends() -> None:
    assert sm3.digest in sm3.BACKENDS.values()
    assert sm3.digest(b"abc").hex() == SM3_EXAMPLES[0][1]


@pytest.mark.parametrize(("curve", "example"), [(TEST_CURVE, PART2), (SM2_CURVE, PART5)])
def test_reference_reproduces_the_standards_signatures(curve: ref.Curve, example: Example) -> None:
    public = ref.multiply(curve, example.d, curve.generator)
    assert public == (example.x, example.y)
    signature = ref.sign(curve, example.d, example.id, example.message, example.k)
    assert signature == (example.r, example.s)
    assert ref.verify(curve, public, example.id, example.message, signature)
    assert not ref.verify(curve, public, example.id, b"message digesT", signature)


def test_reference_gives_the_intermediate_values_of_part_2() -> None:
    public = (PART2.x, PART2.y)
    assert ref.z_value(TEST_CURVE, PART2.id, public).hex() == PART2.z
    assert ref.digest(TEST_CURVE, PART2.id, public, PART2.message) == PART2.e


def test_openssl_verifies_the_part_5_example() -> None:
    public = sm2.PublicKey(_point(PART5.x, PART5.y))
    signature = _raw(PART5.r, PART5.s)
    assert public.verify(PART5.message, signature)
    assert not public.verify(b"message digesT", signature)
    assert not public.verify(PART5.message, _raw(PART5.r, PART5.s ^ 1))
    assert not public.verify(PART5.message, signature, b"1234567812345679")


def test_openssl_signs_with_the_part_5_key_what_the_reference_accepts() -> None:
    key = sm2.PrivateKey.from_scalar(PART5.d.to_bytes(32, "big"), _point(PART5.x, PART5.y))
    signature = key.sign(PART5.message)
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    assert ref.verify(SM2_CURVE, (PART5.x, PART5.y), PART5.id, PART5.message, (r, s))
    assert key.sign(PART5.message) != signature  # a fresh k each time
    assert libcrypto.private_scalar(key._key) == PART5.d.to_bytes(32, "big")


@pytest.mark.parametrize("message", [b"", b"x", os.urandom(1000)])
def test_openssl_and_the_reference_accept_each_others_signatures(message: bytes) -> None:
    key = sm2.PrivateKey.generate()
    point = key.public_key.point
    public = (int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big"))
    signature = key.sign(message)
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    assert ref.verify(SM2_CURVE, public, sm2.DEFAULT_ID, message, (r, s))
    scalar = libcrypto.private_scalar(key._key)
    theirs = ref.sign(SM2_CURVE, int.from_bytes(scalar, "big"), sm2.DEFAULT_ID, message, 12345)
    assert key.public_key.verify(message, _raw(*theirs))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_keys_and_signatures_interoperate_with_the_openssl_command(tmp_path: Path) -> None:
    key_file = tmp_path / "node.pem"
    key, made = sm2.ensure_key_file(str(key_file))
    assert made
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key_file), "-pubout"], capture_output=True, check=True
    ).stdout
    assert public == key.public_key.pem()
    (tmp_path / "message").write_bytes(b"checkpoint")
    signature = subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-inkey", str(key_file), "-rawin", "-digest", "sm3",
         "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "message")],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert key.public_key.verify(b"checkpoint", sm2.from_der(signature))
    (tmp_path / "signature").write_bytes(sm2.to_der(key.sign(b"checkpoint")))
    (tmp_path / "public.pem").write_bytes(key.public_key.pem())
    checked = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "public.pem"),
         "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
         "-in", str(tmp_path / "message"), "-sigfile", str(tmp_path / "signature")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "Verified Successfully" in checked.stdout


def test_key_file_is_private_and_made_once(tmp_path: Path) -> None:
    path = str(tmp_path / "sm2.pem")
    old = os.umask(0)
    try:
        key, made = sm2.ensure_key_file(path)
    finally:
        os.umask(old)
    assert made
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, made_again = sm2.ensure_key_file(path)
    assert not made_again
    assert again.public_key == key.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["sm2.pem"]  # no temporary left


def test_public_key_text_forms_round_trip() -> None:
    key = sm2.PrivateKey.generate().public_key
    assert sm2.PublicKey.from_text(key.pem()) == key
    assert sm2.PublicKey.from_text(key.point.hex().encode()) == key
    assert sm2.PublicKey.from_text(b"  " + key.point.hex().upper().encode() + b"\n") == key


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (b"", "65 bytes starting with 04"),
        (b"zz" * 65, "PEM or 130 hex digits"),
        (b"05" + b"11" * 64, "starting with 04"),
        (b"04" + b"11" * 64, "not a point on the SM2 curve"),
        (b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----", "no -----BEGIN"),
        (
            b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
            "not an SM2 public key",
        ),
    ],
)
def test_bad_public_keys_are_refused_with_the_reason(text: bytes, complaint: str) -> None:
    with pytest.raises(sm2.SM2Error, match=complaint):
        sm2.PublicKey.from_text(text)


def test_malformed_signatures_do_not_verify() -> None:
    key = sm2.PrivateKey.generate()
    good = key.sign(b"m")
    for bad in (b"", good[:63], good + b"\x00", bytes(64), b"\xff" * 64):
        assert not key.public_key.verify(b"m", bad)


def test_a_damaged_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "sm2.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(sm2.SM2Error, match=str(path)):
        sm2.ensure_key_file(str(path))
    path.write_bytes(b"x" * (sm2.MAX_PEM_BYTES + 1))
    with pytest.raises(sm2.SM2Error, match="larger than"):
        sm2.read_key_file(str(path))


def test_a_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(sm2.SM2Error, match="not an SM2 key"):
        sm2.PrivateKey.from_pem(other)


def test_der_forms_of_every_length_round_trip() -> None:
    for r, s in [(1, 1), (2**255, 2**255 - 1), (0x7F, 0x80 << 248), (PART5.r, PART5.s)]:
        raw = _raw(r, s)
        assert sm2.from_der(sm2.to_der(raw)) == raw
    for bad in (b"", b"\x30\x00", b"\x30\x06\x02\x01\x01\x02\x01", b"\x31" + bytes(7)):
        with pytest.raises(sm2.SM2Error):
            sm2.from_der(bad)
