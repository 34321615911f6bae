"""`idnode serve` with TLS: gRPC, HTTPS and /metrics verified by clients; SIGHUP reloads
the certificate in every worker for new connections while open ones carry on."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto import registry_pb2, registry_pb2_grpc
from registry.crypto import certificates
from tests.node.conftest import ADMIN_TOKEN, IDNODE, NodeProcess, run_cli, start_node
from tests.tls.conftest import HOSTS, Pki, served_fingerprint


def start_tls_node(tmp_path: Path, pki: Pki, *args: str) -> tuple[NodeProcess, str, str]:
    cert, key = pki.server()
    node = start_node(
        tmp_path / "data", "--http-listen", "127.0.0.1:0",
        "--tls-cert-file", cert, "--tls-key-file", key, *args,
        env={"IDNODE_METRICS_TLS": "true"},
    )  # fmt: skip
    return node, cert, key


def https_get(url: str, ca_file: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def shown_expiries(node: NodeProcess, pki: Pki) -> dict[str, float]:
    """idnode_tls_certificate_expiry_timestamp_seconds by listener, as /metrics shows it."""
    _, body = https_get(f"https://{node.metrics}/metrics", pki.ca_file)
    found = re.findall(
        rb'^idnode_tls_certificate_expiry_timestamp_seconds\{listener="(\w+)"\} (\S+)$',
        body,
        re.MULTILINE,
    )
    return {name.decode(): float(value) for name, value in found}


def test_every_face_serves_tls_and_clients_verify_it(tmp_path: Path, pki: Pki) -> None:
    node, _, _ = start_tls_node(tmp_path, pki)
    try:
        created = run_cli(
            "enterprise", "create", "--server", node.grpc, "--ca-file", pki.ca_file, "--json"
        )
        assert created.returncode == 0, created.stderr
        prefix = json.loads(created.stdout)["prefix"]
        plain = run_cli("enterprise", "list", "--server", node.grpc)
        assert plain.returncode != 0 and "cannot reach" in plain.stderr
        stranger = Pki(pki.directory, certificates.make_ca("another CA"))
        stranger.write("other-ca", stranger.ca)
        wrong = run_cli(
            "enterprise",
            "list",
            "--server",
            node.grpc,
            "--ca-file",
            str(pki.directory / "other-ca.pem"),
        )
        assert wrong.returncode != 0, wrong.stdout
        named = run_cli(
            "enterprise",
            "list",
            "--server",
            node.grpc,
            "--ca-file",
            pki.ca_file,
            "--server-name",
            "elsewhere.example",
        )
        assert named.returncode != 0  # the certificate is not for that name
        http_address = node.ready["http"][0]
        status, body = https_get(f"https://{http_address}/api/handles/{prefix}/x", pki.ca_file)
        assert status == 404 and json.loads(body)["responseCode"] == 100
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            urllib.request.urlopen(f"http://{http_address}/", timeout=5).read()
        status, body = https_get(f"https://{node.metrics}/metrics", pki.ca_file)
        assert status == 200 and b"idnode_build_info" in body
    finally:
        assert node.stop() == 0


def test_sighup_gives_new_connections_the_new_certificate_and_keeps_open_ones(
    tmp_path: Path, pki: Pki
) -> None:
    node, cert, key = start_tls_node(tmp_path, pki, "--workers", "2")
    grpc_address, http_address = node.grpc, node.ready["http"][0]
    try:
        old = served_fingerprint(grpc_address, pki.ca_file)
        assert served_fingerprint(http_address, pki.ca_file, "http/1.1") == old
        # Held open across the reload: a gRPC channel, an HTTPS keep-alive connection.
        roots = Path(pki.ca_file).read_bytes()
        channel = grpc.secure_channel(grpc_address, grpc.ssl_channel_credentials(roots))
        states: list[grpc.ChannelConnectivity] = []
        channel.subscribe(states.append, try_to_connect=True)
        registry = registry_pb2_grpc.RegistryStub(channel)
        metadata = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
        assert (
            registry.WhoAmI(registry_pb2.WhoAmIRequest(), metadata=metadata, timeout=10).name
            == "admin"
        )
        held = http.client.HTTPSConnection(
            http_address.rpartition(":")[0], int(http_address.rpartition(":")[2]),
            context=ssl.create_default_context(cafile=pki.ca_file), timeout=10,
        )  # fmt: skip
        held.request("GET", "/api/handles/88.118/nothing")
        assert held.getresponse().read()
        held_socket = held.sock

        new = certificates.make_leaf(pki.ca, "renewed", HOSTS)
        staged = tmp_path / "staged.pem"  # replaced the way certbot and friends do: a rename
        certificates.write_private(str(staged), new.cert_pem)
        certificates.write_private(str(staged) + ".key", new.key_pem)
        shutil.move(str(staged) + ".key", key)
        shutil.move(str(staged), cert)
        os.kill(node.process.pid, signal.SIGHUP)

        deadline = time.monotonic() + 15
        while served_fingerprint(grpc_address, pki.ca_file) != new.fingerprint:
            assert time.monotonic() < deadline, "gRPC never served the new certificate"
            time.sleep(0.1)
        # Every worker reloaded: the kernel spreads new connections over both of them.
        for _ in range(16):
            assert served_fingerprint(grpc_address, pki.ca_file) == new.fingerprint
            assert served_fingerprint(http_address, pki.ca_file, "http/1.1") == new.fingerprint
        status, _ = https_get(f"https://{node.metrics}/healthz", pki.ca_file)
        assert status == 200
        expiry = new.certificate.not_valid_after_utc.timestamp()
        deadline = time.monotonic() + 10  # the workers' gauges reach the scrape within a second
        while shown_expiries(node, pki) != {"grpc": expiry, "http": expiry, "metrics": expiry}:
            assert time.monotonic() < deadline, shown_expiries(node, pki)
            time.sleep(0.2)
        assert served_fingerprint(node.metrics, pki.ca_file, "http/1.1") == new.fingerprint

        # The connections opened before carry on, on their first certificate.
        assert (
            registry.WhoAmI(registry_pb2.WhoAmIRequest(), metadata=metadata, timeout=10).name
            == "admin"
        )
        assert states[-1] == grpc.ChannelConnectivity.READY
        assert states.count(grpc.ChannelConnectivity.READY) == 1, states  # never reconnected
        held.request("GET", "/api/handles/88.118/nothing")
        assert held.getresponse().status == 404
        assert held.sock is held_socket
        assert held_socket is not None
        peer = held_socket.getpeercert(binary_form=True)
        assert (
            peer is not None
            and certificates.fingerprint_of_pem(ssl.DER_cert_to_PEM_cert(peer).encode()) == old
        )
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        held.close()
        channel.close()
    finally:
        assert node.stop() == 0


def test_a_broken_certificate_on_reload_keeps_the_running_one(tmp_path: Path, pki: Pki) -> None:
    node, cert, _ = start_tls_node(tmp_path, pki)
    try:
        before = served_fingerprint(node.grpc, pki.ca_file)
        Path(cert).write_text("not a certificate\n")
        os.kill(node.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "TLS reload failed" not in node.log():
            assert time.monotonic() < deadline, node.log()
            time.sleep(0.1)
        assert served_fingerprint(node.grpc, pki.ca_file) == before
        assert (
            run_cli(
                "enterprise", "list", "--server", node.grpc, "--ca-file", pki.ca_file
            ).returncode
            == 0
        )
    finally:
        assert node.stop() == 0


def test_unusable_certificate_files_stop_start_up_naming_the_key(tmp_path: Path, pki: Pki) -> None:
    cert, _ = pki.server()
    _, other_key = pki.server("other")
    result = subprocess.run(
        [IDNODE, "serve", "--data-dir", str(tmp_path / "d"), "--init", "--no-dns",
         "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--tls-cert-file", cert, "--tls-key-file", other_key],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "IDNODE_ADMIN_TOKEN": ADMIN_TOKEN},
    )  # fmt: skip
    assert result.returncode != 0
    assert "does not belong to" in result.stderr and "'tls_cert_file'" in result.stderr
