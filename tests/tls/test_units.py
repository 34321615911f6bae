"""TLS pieces on their own: config keys, the plain-listener warning, reloads, pins, dev-cert."""

from __future__ import annotations

import argparse
import logging
import stat
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from idnode.cli import client
from idnode.config import ConfigError, load, tls_pair
from idnode.node.parts import Listen, replica_tls, upstream_tls, warn_plain_listeners
from registry.crypto import certificates
from registry.crypto.certificates import CertificateError
from registry.errors import AuthenticationRequired, InvalidRequest, PermissionDenied
from resolver.tls import CertificateSource, ClientTls, ServerTls, SiteStubs, is_loopback
from sync.toplevel import pins
from tests.node.conftest import run_cli
from tests.tls.conftest import HOSTS, Pki


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"tls_cert_file": "c.pem"}, "'tls_key_file'"),
        ({"grpc_tls_key_file": "k.pem"}, "'grpc_tls_cert_file'"),
        ({"upstream_cert_file": "c.pem"}, "'upstream_key_file'"),
        ({"metrics_tls": True}, "'metrics_tls'"),
        ({"upstream": "127.0.0.1:1"}, "'upstream_token'"),
    ],
)
def test_incomplete_tls_settings_name_the_key(overrides: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load(None, overrides, environ={})


def test_listener_pairs_shared_and_own() -> None:
    config = load(
        None,
        {"tls_cert_file": "s.pem", "tls_key_file": "s.key", "http_tls_cert_file": "h.pem",
         "http_tls_key_file": "h.key", "upstream": "127.0.0.1:1", "upstream_cert_file": "c",
         "upstream_key_file": "k"},
        environ={},
    )  # fmt: skip
    assert tls_pair(config, "grpc") == ("s.pem", "s.key")
    assert tls_pair(config, "http") == ("h.pem", "h.key")
    assert tls_pair(config, "metrics") is None  # /metrics only when asked
    assert config.upstream_token == ""  # a pinned certificate may stand in for it


@pytest.mark.parametrize(
    ("settings", "wanted"),
    [
        ({}, None),
        ({"tls": True}, ClientTls()),
        ({"ca_file": "ca.pem"}, ClientTls(ca_file="ca.pem")),
        ({"cert_file": "c", "key_file": "k"}, ClientTls(cert_file="c", key_file="k")),
        ({"server_name": "up.example"}, ClientTls(server_name="up.example")),
    ],
)
def test_any_client_tls_setting_turns_tls_on(
    settings: dict[str, object], wanted: ClientTls | None
) -> None:
    upstream = load(
        None, {"upstream": "127.0.0.1:1", "upstream_token": "t"}
        | {f"upstream_{k}": v for k, v in settings.items()}, environ={},
    )  # fmt: skip
    replica = load(
        None, {"replica_of": "127.0.0.1:1", "replica_token": "t"}
        | {f"replica_{k}": v for k, v in settings.items()}, environ={},
    )  # fmt: skip
    assert upstream_tls(upstream) == wanted
    assert replica_tls(replica) == wanted
    flags = {"tls": False, "ca_file": None, "cert_file": None, "key_file": None}
    args = argparse.Namespace(**(flags | {"server_name": None} | settings))
    assert client.client_tls(args) == wanted


def test_plain_listeners_off_loopback_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    config = load(None, {}, environ={})
    listen = Listen(
        grpc=("0.0.0.0:8600", "127.0.0.1:8600"), dns=("0.0.0.0:53",), http=("[::]:80", "[::1]:80")
    )
    with caplog.at_level(logging.WARNING, "idnode.tls"):
        warn_plain_listeners(config, listen)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2, warned  # DNS carries no credential; loopback stays quiet
    assert "grpc listens on 0.0.0.0:8600 without TLS" in warned[0]
    assert "http listens on [::]:80" in warned[1]
    caplog.clear()
    secured = load(None, {"tls_cert_file": "c", "tls_key_file": "k"}, environ={})
    with caplog.at_level(logging.WARNING, "idnode.tls"):
        warn_plain_listeners(secured, listen)
    assert not caplog.records
    assert [
        is_loopback(h)
        for h in ("127.0.0.2", "::1", "[::1]", "localhost", "0.0.0.0", "::", "example.com")
    ] == [True, True, True, True, False, False, False]


def test_reload_reads_the_files_again_and_keeps_a_broken_pair_out(pki: Pki) -> None:
    cert, key = pki.server()
    source = CertificateSource(ServerTls(cert, key))
    first = source.pair.fingerprint
    assert not source.reload() and source.generation == 0
    renewed = certificates.make_leaf(pki.ca, "renewed", HOSTS)
    pki.write("server", renewed)
    assert source.reload() and source.pair.fingerprint == renewed.fingerprint != first
    Path(key).write_bytes(certificates.make_leaf(pki.ca, "x").key_pem)  # not the cert's key
    assert not source.reload() and source.pair.fingerprint == renewed.fingerprint
    with pytest.raises(CertificateError, match="does not belong"):
        CertificateSource(ServerTls(cert, key))
    good_cert, good_key = pki.server("good")
    with pytest.raises(CertificateError, match="client CA"):
        CertificateSource(ServerTls(good_cert, good_key, require_client_cert=True))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("AB:" * 31 + "AB", True),
        ("ab" * 32, True),
        ("ab" * 31, False),
        ("zz" * 32, False),
        ("", False),
    ],
)
def test_fingerprints_as_people_write_them(text: str, ok: bool) -> None:
    if ok:
        assert certificates.parse_fingerprint(text) == "ab" * 32
    else:
        with pytest.raises(CertificateError):
            certificates.parse_fingerprint(text)


def test_pin_rules() -> None:
    pinned = ["aa" * 32]
    pins.check("88.118", [], "", token_sent=True)
    pins.check("88.118", pinned, "aa" * 32, token_sent=False)
    with pytest.raises(AuthenticationRequired):
        pins.check("88.118", [], "", token_sent=False)
    with pytest.raises(AuthenticationRequired):
        pins.check("88.118", pinned, "", token_sent=True)
    with pytest.raises(PermissionDenied):
        pins.check("88.118", pinned, "bb" * 32, token_sent=True)
    with pytest.raises(InvalidRequest):
        pins.fingerprints(["nope"])
    with pytest.raises(InvalidRequest):
        pins.fingerprints([f"{n:064x}" for n in range(pins.MAX_PINS + 1)])


def test_dev_cert_makes_a_private_ca_and_certificates_that_work(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    made = run_cli("dev-cert", str(directory), token=None)
    assert made.returncode == 0, made.stderr
    assert "--tls-cert-file" in made.stdout and "--ca-file" in made.stdout
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    ca = certificates.load_certificates((directory / "ca.pem").read_bytes())[0]
    server = certificates.load_certificates((directory / "server.pem").read_bytes())[0]
    client = certificates.load_certificates((directory / "client.pem").read_bytes())[0]
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(n.value) for n in names} == set(HOSTS)
    source = CertificateSource(
        ServerTls(str(directory / "server.pem"), str(directory / "server.key"))
    )
    assert source.pair.fingerprint == certificates.fingerprint(server)
    again = run_cli("dev-cert", str(directory), token=None)
    assert again.returncode != 0 and "--force" in again.stderr


def test_site_stubs_are_reused_bounded_in_count_and_retained_by_name() -> None:
    stubs = SiteStubs(health_pb2_grpc.HealthStub, None, limit=2)
    first = stubs.get("127.0.0.1:1", False)
    assert stubs.get("127.0.0.1:1", False) is first
    second = stubs.get("127.0.0.1:2", False)
    stubs.get("127.0.0.1:1", False)  # now the most recently used
    third = stubs.get("127.0.0.1:3", False)
    assert len(stubs) == 2
    assert _closed(second) and not _closed(first) and not _closed(third)
    stubs.retain({("127.0.0.1:3", False)})
    assert len(stubs) == 1 and _closed(first) and not _closed(third)
    stubs.close()
    assert len(stubs) == 0 and _closed(third)


def _closed(stub: health_pb2_grpc.HealthStub) -> bool:
    """True when the stub's channel was closed: a call is refused before it is sent."""
    try:
        stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
    except ValueError:  # "Cannot invoke RPC on closed channel!"
        return True
    except grpc.RpcError:  # nothing listens there: the call was made
        return False
    raise AssertionError("a health check answered on a port nothing should serve")
