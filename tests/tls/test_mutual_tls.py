"""Mutual TLS between a node and the top-level node: pinned client certificates, refused
strangers (another CA, another certificate, an expired one), and a rotation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from proto import handle_pb2, sync_pb2, sync_pb2_grpc
from registry.crypto import certificates
from registry.store import Store, StoreOptions
from resolver.tls import ClientTls, ServerTls, open_channel
from sync.pusher import Pusher, PushOptions
from sync.toplevel.server import TopLevelNode
from tests.node.conftest import run_cli, start_node
from tests.rpc import failure
from tests.sync.conftest import Secondary
from tests.sync.nodes import ADMIN_TOKEN, wait_until
from tests.tls.conftest import Pki

FAST = PushOptions(backoff_initial_seconds=0.05, backoff_max_seconds=0.2)
NODE_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def toplevel(tmp_path: Path, pki: Pki) -> Iterator[tuple[TopLevelNode, str]]:
    cert, key = pki.server("toplevel")
    tls = ServerTls(cert, key, client_ca_file=pki.ca_file, require_client_cert=True)
    node = TopLevelNode(str(tmp_path / "toplevel"), ADMIN_TOKEN, map_size_bytes=64 << 20, tls=tls)
    address = node.start(["127.0.0.1:0"])[0]
    try:
        yield node, address
    finally:
        node.stop(0)


def hello(address: str, pki: Pki, cert: str, key: str, token: str = "") -> sync_pb2.HelloResponse:
    """One Hello as node 88.118, presenting `cert`."""
    tls = ClientTls(ca_file=pki.ca_file, cert_file=cert, key_file=key)
    with open_channel(address, tls) as channel:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        reply: sync_pb2.HelloResponse = sync_pb2_grpc.TopLevelStub(channel).Hello(
            sync_pb2.HelloRequest(node_prefix="88.118", log_id="log", node_id=NODE_ID),
            metadata=metadata,
            timeout=5,
        )
        return reply


def refused(address: str, pki: Pki, cert: str, key: str, token: str = "") -> grpc.StatusCode:
    return failure(lambda: hello(address, pki, cert, key, token))[0]


def admin_cli(pki: Pki, address: str, *args: str) -> dict[str, object]:
    """`idnode toplevel node ...` as the administrator, over mutual TLS."""
    cert, key, _ = pki.client("admin-client")
    result = run_cli(
        "toplevel", "node", *args, "--server", address, "--json",
        "--ca-file", pki.ca_file, "--cert-file", cert, "--key-file", key, token=ADMIN_TOKEN,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_a_node_syncs_with_its_pinned_certificate_and_its_token(
    secondary: Secondary, toplevel: tuple[TopLevelNode, str], pki: Pki
) -> None:
    node, address = toplevel
    cert, key, _ = pki.client("node-88-118")
    added = admin_cli(pki, address, "add", "88.118", "--client-cert", cert)
    token = str(added["token"])
    secondary.register("88.118/one", "https://example.com/1")
    tls = ClientTls(ca_file=pki.ca_file, cert_file=cert, key_file=key)
    pusher = Pusher(secondary.store, "88.118", address, token, options=FAST, tls=tls)
    pusher.start()
    try:
        wait_until(
            "the record mirrored", lambda: "88.118/one" in node.mirror.mirror_records("88.118"), 15
        )
    finally:
        pusher.stop()


def test_a_node_homed_by_certificate_alone_needs_no_token(
    secondary: Secondary, toplevel: tuple[TopLevelNode, str], pki: Pki
) -> None:
    node, address = toplevel
    cert, key, fingerprint = pki.client("node-88-118")
    added = admin_cli(
        pki,
        address,
        "add",
        "88.118",
        "--cert-fingerprint",
        fingerprint.upper(),
        "--certificate-only",
    )
    assert added["token"] == "" and added["client_cert_sha256"] == [fingerprint]
    secondary.register("88.118/two", "https://example.com/2")
    tls = ClientTls(ca_file=pki.ca_file, cert_file=cert, key_file=key)
    pusher = Pusher(secondary.store, "88.118", address, "", options=FAST, tls=tls)
    pusher.start()
    try:
        wait_until(
            "the record mirrored", lambda: "88.118/two" in node.mirror.mirror_records("88.118"), 15
        )
    finally:
        pusher.stop()
    other_cert, other_key, _ = pki.client("someone-else")
    assert refused(address, pki, other_cert, other_key) == grpc.StatusCode.PERMISSION_DENIED


def test_strangers_are_refused(toplevel: tuple[TopLevelNode, str], pki: Pki) -> None:
    node, address = toplevel
    cert, key, fingerprint = pki.client("node-88-118")
    _, token = node.mirror.add_node("88.118", [], pins=[fingerprint])
    assert hello(address, pki, cert, key, token).acked_sequence == 0
    # Another CA: the handshake itself fails.
    other_ca = certificates.make_ca("not our CA")
    foreign_cert, foreign_key, _ = pki.client("foreign", ca=other_ca)
    assert refused(address, pki, foreign_cert, foreign_key, token) == grpc.StatusCode.UNAVAILABLE
    # Our CA, but not the pinned certificate: refused though the token is right.
    other_cert, other_key, _ = pki.client("node-other")
    assert refused(address, pki, other_cert, other_key, token) == grpc.StatusCode.PERMISSION_DENIED
    # The pinned certificate's twin, expired: the handshake fails.
    old_cert, old_key, old_fingerprint = pki.client("node-expired", expired=True)
    node.mirror.pin("88.118", [old_fingerprint], add=True)
    assert refused(address, pki, old_cert, old_key, token) == grpc.StatusCode.UNAVAILABLE
    # The right certificate with someone else's token: still refused.
    _, other_token = node.mirror.add_node("88.119", [])
    assert refused(address, pki, cert, key, other_token) == grpc.StatusCode.PERMISSION_DENIED
    listed = admin_cli(pki, address, "list")["nodes"]
    assert isinstance(listed, list)
    assert "not pinned" in next(n for n in listed if n["node_prefix"] == "88.118")["refusal"]


def test_a_rotated_certificate_is_accepted_once_pinned_and_the_old_one_refused_after(
    toplevel: tuple[TopLevelNode, str], pki: Pki
) -> None:
    _, address = toplevel
    old_cert, old_key, old_fp = pki.client("node-2025")
    new_cert, new_key, new_fp = pki.client("node-2026")
    token = str(admin_cli(pki, address, "add", "88.118", "--client-cert", old_cert)["token"])
    hello(address, pki, old_cert, old_key, token)
    assert refused(address, pki, new_cert, new_key, token) == grpc.StatusCode.PERMISSION_DENIED
    both = admin_cli(pki, address, "pin", "88.118", "--client-cert", new_cert, "--add")
    assert both["client_cert_sha256"] == [old_fp, new_fp]
    hello(address, pki, old_cert, old_key, token)  # the overlap: either works
    hello(address, pki, new_cert, new_key, token)
    moved = admin_cli(pki, address, "pin", "88.118", "--client-cert", new_cert)
    assert moved["previous"] == [old_fp, new_fp] and moved["client_cert_sha256"] == [new_fp]
    assert refused(address, pki, old_cert, old_key, token) == grpc.StatusCode.PERMISSION_DENIED
    hello(address, pki, new_cert, new_key, token)
    listed = admin_cli(pki, address, "list")
    assert listed["nodes"][0]["client_cert_sha256"] == [new_fp]  # type: ignore[index]


def test_idnode_serve_syncs_and_asks_for_referrals_over_mutual_tls(
    tmp_path: Path, toplevel: tuple[TopLevelNode, str], pki: Pki
) -> None:
    node, address = toplevel
    cert, key, _ = pki.client("node-88-118")
    token = str(admin_cli(pki, address, "add", "88.118", "--client-cert", cert)["token"])
    node.mirror.add_node("88.119", [handle_pb2.Site(grpc_address="127.0.0.1:9")])
    serving = start_node(
        tmp_path / "data", "--upstream", address, "--upstream-token", token,
        "--upstream-ca-file", pki.ca_file, "--upstream-cert-file", cert,
        "--upstream-key-file", key,
    )  # fmt: skip
    try:
        made = run_cli(
            "register", "88.118/tls-1", "--value", "URL=https://example.com",
            "--server", serving.grpc,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        # Credential changes (ACCOUNT_PUT entries) sync too; the mirror accepts them in order.
        enterprise = run_cli("enterprise", "create", "--json", "--server", serving.grpc)
        enterprise_token = json.loads(enterprise.stdout)["token"]
        rotated = run_cli("token", "rotate", "--server", serving.grpc, token=enterprise_token)
        assert rotated.returncode == 0, rotated.stderr
        store = Store(str(tmp_path / "data"), StoreOptions(readonly=True))
        try:
            with store.read() as txn:
                last = store.last_sequence(txn)
        finally:
            store.close()
        wait_until(
            "every entry acknowledged",
            lambda: node.mirror.node("88.118").acked_sequence == last,
            20,
        )
        assert "88.118/tls-1" in node.mirror.mirror_records("88.118")
        referred = run_cli("resolve", "88.119/x", "--no-follow", "--json", "--server", serving.grpc)
        assert referred.returncode == 0, referred.stderr + serving.log()
        # The referral came from the upstream over mutual TLS: 88.119's site, or the
        # top-level node itself once its probes found that site down (takeover).
        site = json.loads(referred.stdout)["referral"]["sites"][0]["grpc"]
        assert site in ("127.0.0.1:9", address)
    finally:
        assert serving.stop() == 0


def test_pins_need_a_toplevel_node_that_asks_for_client_certificates(tmp_path: Path) -> None:
    plain = TopLevelNode(str(tmp_path / "plain"), ADMIN_TOKEN, map_size_bytes=64 << 20)
    address = plain.start(["127.0.0.1:0"])[0]
    try:
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as caught:
            sync_pb2_grpc.TopLevelStub(channel).AddNode(
                sync_pb2.AddNodeRequest(node_prefix="88.118", client_cert_sha256=["ab" * 32]),
                metadata=(("authorization", f"Bearer {ADMIN_TOKEN}"),),
                timeout=5,
            )
        assert isinstance(caught.value, grpc.Call)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "--require-client-cert" in (caught.value.details() or "")
    finally:
        plain.stop(0)
