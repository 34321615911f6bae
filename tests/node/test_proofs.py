"""A real node's SM2 key and signed change log as a partner sees them: HS_PUBKEY on the
node's prefix record, `idnode resolve --verify`, the REST API's ?proof=true, and the same
checks failing once the stored record is altered in the LMDB file."""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from proto import handle_pb2
from registry import chain, nodekey
from registry.crypto import sm2
from tests import datafile
from tests.node.conftest import ADMIN_TOKEN, NodeProcess, run_cli, start_node

FAST_SIGNING = {"IDNODE_SIGN_INTERVAL_SECONDS": "0.2"}
IDENTIFIER = "88.118/pump-0001"
ORIGINAL = b"https://example.com/original-0001"
ALTERED = b"https://evil.example/altered-0001"  # as long: the file keeps its layout


def _start(data_dir: Path, init: bool = True) -> NodeProcess:
    return start_node(data_dir, "--http-listen", "127.0.0.1:0", env=FAST_SIGNING, init=init)


def _http(node: NodeProcess, path: str, token: str = "") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://{node.ready['http'][0]}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _register(node: NodeProcess, *values: str) -> None:
    given = [part for value in values for part in ("--value", value)]
    done = run_cli("register", IDENTIFIER, *given, "--server", node.grpc)
    assert done.returncode == 0, done.stderr


def _verify(node: NodeProcess, *extra: str) -> tuple[int, dict[str, Any]]:
    done = run_cli("resolve", IDENTIFIER, "--verify", "--server", node.grpc, "--json", *extra,
                   token=None)  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def _published_key(node: NodeProcess) -> sm2.PublicKey:
    status, document = _http(node, "/api/handles/0.NA/88.118")
    assert status == 200, document
    found = [v for v in document["values"] if v["type"] == nodekey.KEY_TYPE]
    assert [v["index"] for v in found] == [nodekey.KEY_INDEX]
    return sm2.PublicKey.from_text(found[0]["data"]["value"].encode())


def test_the_first_start_makes_a_0600_key_and_publishes_it_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    node = _start(data_dir)
    try:
        key_file = data_dir / nodekey.KEY_FILE
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        key = sm2.read_key_file(str(key_file))
        assert _published_key(node).point == key.public_key.point
        shown = run_cli("resolve", "0.NA/88.118", "--server", node.grpc, "--json", token=None)
        assert shown.returncode == 0, shown.stderr
        (value,) = json.loads(shown.stdout)["values"]
        assert (value["index"], value["type"]) == (nodekey.KEY_INDEX, nodekey.KEY_TYPE)
        assert "node SM2 key created" in node.log()
    finally:
        node.stop()
    before = key_file.read_bytes()
    node = _start(data_dir, init=False)
    try:
        assert key_file.read_bytes() == before
        assert _published_key(node).point == key.public_key.point
        assert node.log().count("node SM2 key created") == 1
    finally:
        node.stop()


def test_resolve_verify_holds_for_the_nodes_key_and_not_for_another(tmp_path: Path) -> None:
    node = _start(tmp_path / "data")
    try:
        _register(node, f"URL={ORIGINAL.decode()}", "EMAIL=ops@example.com")
        code, shown = _verify(node)
        assert code == 0, shown
        assert shown["proof"]["verified"] is True
        assert shown["proof"]["public_key_from"].startswith("HS_PUBKEY of 0.NA/88.118")
        assert [v["data"] for v in shown["values"]] == [ORIGINAL.decode(), "ops@example.com"]
        code, filtered = _verify(node, "--type", "URL")
        assert code == 0 and len(filtered["values"]) == 1, filtered

        other = sm2.PrivateKey.generate().public_key.point.hex()
        code, refused = _verify(node, "--public-key", other)
        assert code == 1
        assert refused["proof"] == {
            "verified": False,
            "reason": f"checkpoint {refused_range(node)}: the signature does not verify",
            "public_key_from": "--public-key",
        }
        text = run_cli("resolve", IDENTIFIER, "--verify", "--server", node.grpc, token=None)
        assert (
            text.returncode == 0 and "verified: these values are those that change" in text.stdout
        )
    finally:
        node.stop()


def refused_range(node: NodeProcess) -> str:
    """The range of the checkpoint holding IDENTIFIER's change, as the node proves it."""
    _status, document = _http(node, f"/api/handles/{IDENTIFIER}?proof=true")
    checkpoint = document["proof"]["checkpoint"]
    return f"{checkpoint['firstSequence']}..{checkpoint['lastSequence']}"


def test_the_rest_api_returns_the_proof_on_request(tmp_path: Path) -> None:
    node = _start(tmp_path / "data")
    try:
        _register(node, f"URL={ORIGINAL.decode()}")
        assert _verify(node)[0] == 0  # signed by now
        status, plain = _http(node, f"/api/handles/{IDENTIFIER}")
        assert status == 200 and "proof" not in plain
        status, document = _http(node, f"/api/handles/{IDENTIFIER}?proof=true")
        assert status == 200, document
        proof = handle_pb2.ChainProof.FromString(base64.b64decode(document["proof"]["chainProof"]))
        verified = chain.verify_proof(proof, _published_key(node))
        assert verified.sequence == document["proof"]["sequence"] == proof.entry.sequence
        assert document["proof"]["operation"] == "create"
        assert [v["data"]["value"] for v in document["values"]] == [ORIGINAL.decode()]
        assert [v.data for v in proof.entry.record.values] == [ORIGINAL]
        status, none = _http(node, f"/api/handles/{IDENTIFIER}?proof=true&type=EMAIL")
        assert (status, none["responseCode"]) == (200, 200)  # Handle: no value matched
    finally:
        node.stop()


def test_a_proof_is_refused_where_it_would_show_restricted_values(tmp_path: Path) -> None:
    node = _start(tmp_path / "data")
    try:
        given = ["--value", f"URL={ORIGINAL.decode()}", "--value", "SECRET=s3", "--private", "2"]
        done = run_cli("register", IDENTIFIER, *given, "--server", node.grpc)
        assert done.returncode == 0, done.stderr
        assert run_cli("resolve", IDENTIFIER, "--server", node.grpc, token=None).returncode == 0
        status, refused = _http(node, f"/api/handles/{IDENTIFIER}?proof=true")
        assert status == 409 and "restricted values" in refused["message"], refused
        code, anonymous = _verify(node)
        assert code != 0 and "restricted values" in json.dumps(anonymous), anonymous
        status, owned = _http(node, f"/api/handles/{IDENTIFIER}?proof=true", ADMIN_TOKEN)
        assert status == 200 and len(owned["values"]) == 2, owned
    finally:
        node.stop()


def test_a_record_altered_in_the_lmdb_file_is_found_by_verify_and_by_the_partner(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    node = _start(data_dir)
    try:
        _register(node, f"URL={ORIGINAL.decode()}")
        assert _verify(node)[0] == 0
    finally:
        node.stop()
    clean = run_cli("verify", "--data-dir", str(data_dir), "--json")
    assert clean.returncode == 0, clean.stdout
    assert datafile.edit(data_dir, ORIGINAL, ALTERED) >= 1

    found = run_cli("verify", "--data-dir", str(data_dir), "--json")
    assert found.returncode == 1
    problems = json.loads(found.stdout)["problems"]
    assert any("does not hash to its chain hash" in p for p in problems), problems

    node = _start(data_dir, init=False)
    try:
        code, shown = _verify(node)
        assert [v["data"] for v in shown["values"]] == [ALTERED.decode()]  # what it serves
        assert code == 1
        assert shown["proof"]["verified"] is False
        assert "is not the entry the checkpoint" in shown["proof"]["reason"]
        _status, document = _http(node, f"/api/handles/{IDENTIFIER}?proof=true")
        proof = handle_pb2.ChainProof.FromString(base64.b64decode(document["proof"]["chainProof"]))
        try:
            chain.verify_proof(proof, _published_key(node))
        except chain.ChainError as error:
            assert "is not the entry the checkpoint" in str(error)
        else:
            raise AssertionError("a proof of an altered record verified")
    finally:
        node.stop()
