"""A replica's hash chain: the same chain hashes as its primary for the entries it applies,
the primary's checkpoints kept where they hold, a snapshot's seed, and proofs that verify
under the primary's key; a real replica answers resolve --verify like its primary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proto import handle_pb2, replica_pb2
from registry import chain, chaincopy, chainlog, proofs, verify
from registry.crypto import sm2
from registry.errors import ProofUnavailable
from registry.registry import Registry
from registry.signer import Signer
from registry.store import Store
from sync.replica import apply
from tests.node.conftest import run_cli
from tests.replica import nodes
from tests.replica.test_apply import _snapshot, _url, _write_history
from tests.sync import nodes as sync_nodes
from tests.sync.nodes import wait_until

KEY = sm2.PrivateKey.generate()


def _log(store: Store, after: int = 0) -> list[handle_pb2.ChangeEntry]:
    with store.read() as txn:
        return list(store.changes_since(txn, after))


def _checkpoints(store: Store, after: int = 0) -> list[handle_pb2.Checkpoint]:
    with store.read() as txn:
        return list(chainlog.checkpoints(txn, store, after))


def _hashes(store: Store, first: int, last: int) -> list[bytes]:
    with store.read() as txn:
        return chainlog.leaves(txn, store, first, last)


def _follow(replica: Store, entries: list[handle_pb2.ChangeEntry],
            checkpoints: list[handle_pb2.Checkpoint], per_batch: int) -> None:  # fmt: skip
    """Apply as the Follow stream sends: each batch with the checkpoints it completes."""
    for start in range(0, len(entries), per_batch):
        batch = entries[start : start + per_batch]
        done = [c for c in checkpoints if batch[0].sequence - 1 < c.last_sequence]
        done = [c for c in done if c.last_sequence <= batch[-1].sequence]
        apply.apply_entries(replica, batch, done)


def test_a_replica_chains_what_it_applies_and_proves_records_as_its_primary(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    _write_history(registry, admin)
    signer = Signer(store, KEY, clock=lambda: 1_700_000_000_000_000_000)
    signer.sign_pending()
    registry.create(admin, "88.118/late", [_url(1, "https://example.com/late")])
    signer.sign_pending()
    entries, checkpoints = _log(store), _checkpoints(store)
    assert len(checkpoints) == 2
    _follow(replica, entries, checkpoints, per_batch=3)

    last = entries[-1].sequence
    assert _hashes(replica, 1, last) == _hashes(store, 1, last)
    assert _checkpoints(replica) == checkpoints
    for identifier in ("88.118/a", "88.118.8/big", "88.118/late"):
        proof = proofs.prove(replica, identifier)
        assert proof == proofs.prove(store, identifier)
        chain.verify_proof(proof, KEY.public_key)
    report = verify.verify(replica)
    assert report.ok, report.problems
    assert f"checkpoints signed up to {last}" in report.chain


def test_a_checkpoint_that_differs_from_the_replicas_chain_is_refused(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    _write_history(registry, admin)
    (checkpoint,) = Signer(store, KEY).sign_pending()
    entries = _log(store)
    apply.apply_entries(replica, entries[:4])
    forged = handle_pb2.Checkpoint()
    forged.CopyFrom(checkpoint)
    forged.merkle_root = bytes(32)
    forged.signature = KEY.sign(chain.signed_bytes(forged))  # signed: only the root is wrong
    with pytest.raises(apply.ApplyError, match="differs from its primary"):
        apply.apply_entries(replica, entries[4:], [forged])
    assert _log(replica) == entries[:4]  # nothing of that batch
    apply.apply_entries(replica, entries[4:], [checkpoint])
    assert _checkpoints(replica) == [checkpoint]


def test_a_copy_by_snapshot_goes_on_with_the_chain_from_its_seed(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    _write_history(registry, admin)
    signer = Signer(store, KEY)
    signer.sign_pending()
    registry.create(admin, "88.118/unsigned", [_url(1, "https://example.com/u")])
    chunks, sequence = _snapshot(store, records_per_chunk=3)
    with store.read() as txn:
        seed = chaincopy.seed(txn, store, sequence)
    assert seed is not None and seed.first == sequence  # the one entry not signed yet
    applier = apply.SnapshotApplier(replica)
    for chunk in chunks:
        applier.chunk(chunk)
    end = replica_pb2.SnapshotEnd(sequence=sequence, chain_from=seed.first,
                                  chain_previous=seed.previous, chain_hashes=seed.hashes)  # fmt: skip
    start = replica_pb2.FollowStart(node_prefix="88.118", log_id="f" * 32, node_id="e" * 32)
    applier.finish(end, start)

    registry.create(admin, "88.118/after", [_url(1, "https://example.com/after")])
    made = signer.sign_pending()
    assert made[0].first_sequence == sequence  # it covers the seed's entry too
    _follow(replica, _log(store, sequence), made, per_batch=1)
    assert _checkpoints(replica) == made
    chain.verify_proof(proofs.prove(replica, "88.118/after"), KEY.public_key)
    with pytest.raises(ProofUnavailable, match="older than the change log keeps"):
        proofs.prove(replica, "88.118/unsigned")  # the snapshot brought no entry for it
    chain.verify_proof(proofs.prove(store, "88.118/unsigned"), KEY.public_key)  # its primary
    report = verify.verify(replica)
    assert report.ok, report.problems


def test_a_snapshot_of_a_primary_without_a_chain_leaves_the_copy_without_one(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    _write_history(registry, admin)
    chunks, sequence = _snapshot(store, records_per_chunk=100)
    applier = apply.SnapshotApplier(replica)
    for chunk in chunks:
        applier.chunk(chunk)
    start = replica_pb2.FollowStart(node_prefix="88.118", log_id="f" * 32, node_id="e" * 32)
    applier.finish(replica_pb2.SnapshotEnd(sequence=sequence), start)  # an older primary
    registry.create(admin, "88.118/after", [_url(1, "https://example.com/after")])
    apply.apply_entries(replica, _log(store, sequence))
    with pytest.raises(ProofUnavailable, match="keeps no signed change log"):
        proofs.prove(replica, "88.118/after")
    report = verify.verify(replica)
    assert report.ok and "keeps no hash chain" in report.chain


@pytest.mark.slow  # a primary and a replica as real processes
def test_a_real_replica_answers_resolve_verify_under_the_primarys_key(tmp_path: Path) -> None:
    primary = nodes.start_primary(tmp_path / "primary")
    procs = [primary]
    try:
        _create(primary, "88.118/before")
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(tmp_path / "replica", primary.address, token)
        procs.append(replica)
        _create(primary, "88.118/after")
        nodes.wait_converged(primary, replica)
        wait_until("the change signed", lambda: _verify(primary.address, "88.118/after")[0])
        wait_until("the checkpoint copied", lambda: _verify(replica.address, "88.118/after")[0])
        assert _verify(primary.address, "88.118/before")[0]
        held, shown = _verify(replica.address, "88.118/before")  # copied, not followed
        assert not held and "ask its primary" in shown, shown
    finally:
        for proc in reversed(procs):
            proc.stop()
    checked = run_cli("verify", "--data-dir", str(tmp_path / "replica"), "--json")
    assert checked.returncode == 0, checked.stdout
    assert "signatures checked with the key from HS_PUBKEY" in json.loads(checked.stdout)["chain"]


def _create(proc: nodes.Proc, identifier: str) -> None:
    record = sync_nodes.record(identifier, ("URL", f"https://example.com/{identifier}"))
    sync_nodes.registry(proc).Create(record, metadata=nodes.ADMIN, timeout=10)


def _verify(address: str, identifier: str) -> tuple[bool, str]:
    """`idnode resolve --verify` against `address`, the key from its HS_PUBKEY."""
    done = run_cli("resolve", identifier, "--verify", "--server", address, "--json", token=None)
    held = done.returncode == 0 and json.loads(done.stdout)["proof"]["verified"] is True
    return held, done.stdout + done.stderr
