"""The hash chain in a real store: written with every entry, signed, proven, verified,
noticed when the LMDB file is edited, kept across trimming and upgrades."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import lmdb
import pytest

import metrics
from proto import handle_pb2
from registry import (
    accounts,
    chain,
    chainlog,
    credentials,
    managed,
    nodekey,
    proofs,
    retention,
    upgrade,
    verify,
    verifychain,
)
from registry.crypto import sm2
from registry.errors import ProofNotReady, ProofUnavailable, StoreError
from registry.registry import Registry
from registry.signer import Signer
from registry.store import SCHEMA_VERSION, Store, StoreOptions
from tests import datafile
from tests.registry import full_disk, groups

HandleValue = handle_pb2.HandleValue
KEY = sm2.PrivateKey.generate()
NODE_PREFIX = "88.118"


def _open(path: str) -> Store:
    return Store(path, StoreOptions(durable=False, map_size_bytes=64 << 20))


def _url(text: str) -> list[HandleValue]:
    return [HandleValue(index=1, type="URL", data=text.encode())]


def _fill(store: Store) -> Registry:
    """Every kind of change: prefixes, an account, creates, updates, deletes, a batch."""
    registry = Registry(store, NODE_PREFIX)
    registry.ensure_node_prefix()
    accounts.ensure_admin(store, None)
    admin = accounts.Account(name="admin", role=accounts.ADMIN, prefixes=[], created=0)
    enterprise = registry.create_enterprise(admin, "8", "Maker", "ops@example.com")
    for n in range(12):
        registry.create(
            admin, f"88.118.8/item-{n:04}", _url(f"https://example.com/original-{n:04}")
        )
    registry.put_record(admin, "88.118.8/item-0003", _url("https://example.com/updated-0003"), True)
    registry.delete(admin, "88.118.8/item-0005")
    batch = [
        handle_pb2.Record(identifier=f"88.118.8/b-{n}", values=_url(f"https://b/{n}"))
        for n in range(30)
    ]
    registry.batch_register(admin, batch)
    credentials.rotate(store, admin, enterprise.account, 0, 0, 1_700_000_000)
    return registry


def _entries(store: Store) -> list[handle_pb2.ChangeEntry]:
    with store.read() as txn:
        return list(store.changes_since(txn, 0))


def _stored_chain(store: Store) -> list[bytes]:
    with store.read() as txn:
        return chainlog.leaves(txn, store, 1, store.last_sequence(txn))


def test_the_signer_chains_every_entry_as_the_entries_hash(tmp_path: Path) -> None:
    store = _open(str(tmp_path / "data"))
    _fill(store)
    entries = _entries(store)
    operations = {e.operation for e in entries}
    assert operations == {1, 2, 3, 4, 5}  # CREATE, UPDATE, DELETE, PREFIX_PUT, ACCOUNT_PUT
    with store.read() as txn:
        assert chainlog.chained_to(txn, store) == 0  # a write does not chain: the signer does
    waiting = verify.verify(store)
    assert waiting.ok and f"0 changes chained ({len(entries)} newer not yet)" in waiting.chain
    Signer(store, KEY).sign_pending()
    assert _stored_chain(store) == chain.advance(chain.GENESIS, entries)
    assert verify.verify(store).ok


def test_signed_records_are_proven_and_a_proof_fails_under_another_key(tmp_path: Path) -> None:
    store = _open(str(tmp_path / "data"))
    _fill(store)
    with pytest.raises(ProofNotReady, match="not signed yet"):
        proofs.prove(store, "88.118.8/item-0001")
    made = Signer(store, KEY).sign_pending()
    assert made and made[-1].last_sequence == len(_entries(store))
    assert Signer(store, KEY).sign_pending() == []  # nothing new
    for key in ("88.118.8/item-0001", "88.118.8/item-0003", "88.118.8/b-29"):
        proof = proofs.prove(store, key)
        verified = chain.verify_proof(proof, KEY.public_key)
        assert proof.entry.identifier == key
        assert list(proof.entry.record.values) == list(store.read_record(key).values)  # type: ignore[union-attr]
        assert verified.checkpoint.last_sequence >= verified.sequence
        with pytest.raises(chain.ChainError, match="signature"):
            chain.verify_proof(proof, sm2.PrivateKey.generate().public_key)
    with pytest.raises(ProofUnavailable):
        proofs.prove(store, "88.118.8/item-0005")  # deleted: no change wrote a record


def test_ranges_are_split_at_1024_entries_and_each_proof_stays_small(tmp_path: Path) -> None:
    store = _open(str(tmp_path / "data"))
    registry = Registry(store, NODE_PREFIX)
    registry.ensure_node_prefix()
    admin = accounts.Account(name="admin", role=accounts.ADMIN, prefixes=[], created=0)
    batch = [
        handle_pb2.Record(identifier=f"88.118/n-{n:05}", values=_url("u")) for n in range(2500)
    ]
    registry.batch_register(admin, batch)
    made = Signer(store, KEY).sign_pending()
    assert [c.last_sequence - c.first_sequence + 1 for c in made] == [1024, 1024, 453]
    for key in ("88.118/n-00000", "88.118/n-01500", "88.118/n-02499"):
        proof = proofs.prove(store, key)
        chain.verify_proof(proof, KEY.public_key)
        assert len(proof.path) <= 10 and proof.ByteSize() < 800


def test_an_entry_edited_in_the_lmdb_file_is_found_by_verify(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    store = _open(data_dir)
    _fill(store)
    Signer(store, KEY).sign_pending()
    assert verify.verify(store).ok
    store.close()
    # item-0003's first version now lives only in its superseded change-log entry.
    assert datafile.edit(data_dir, b"original-0003", b"ALTERED!-0003") >= 1
    store = _open(data_dir)
    report = verify.verify(store)
    assert not report.ok
    assert any("does not hash to its chain hash" in p for p in report.problems), report.problems
    store.close()


def test_a_record_edited_in_the_lmdb_file_is_found_through_the_entry_borrowing_it(
    tmp_path: Path,
) -> None:
    data_dir = str(tmp_path / "data")
    store = _open(data_dir)
    _fill(store)
    Signer(store, KEY).sign_pending()
    store.close()
    assert datafile.edit(data_dir, b"updated-0003", b"UPDATED-0003") >= 1
    store = _open(data_dir)
    problems = verify.verify(store).problems
    assert any("does not hash to its chain hash" in p for p in problems), problems
    store.close()


def test_an_altered_chain_hash_and_a_forged_checkpoint_are_found(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    store = _open(data_dir)
    _fill(store)
    Signer(store, KEY).sign_pending()
    with store.read() as txn:
        victim = chainlog.hash_at(txn, store, 7)
    store.close()
    assert datafile.edit(data_dir, victim, bytes(32)) >= 1  # stale copies sit in free pages too
    store = _open(data_dir)
    problems = verify.verify(store).problems
    assert any("change 7 does not hash" in p for p in problems), problems
    assert any("Merkle root" in p for p in problems), problems
    store.close()


def test_trimming_keeps_every_kept_entry_provable_and_verify_passes(tmp_path: Path) -> None:
    store = _open(str(tmp_path / "data"))
    registry = Registry(store, NODE_PREFIX)
    registry.ensure_node_prefix()
    admin = accounts.Account(name="admin", role=accounts.ADMIN, prefixes=[], created=0)
    signer = Signer(store, KEY)
    for round_ in range(3):
        batch = [
            handle_pb2.Record(identifier=f"88.118/r{round_}-{n:04}", values=_url("u"))
            for n in range(700)
        ]
        registry.batch_register(admin, batch)
        signer.sign_pending()
    retention.trim(store, keep_entries=1000, max_entries=1000, cursors=[])
    with store.read() as txn:
        first = store.first_sequence(txn)
        kept = list(chainlog.checkpoints(txn, store))
    assert kept[0].first_sequence <= first <= kept[0].last_sequence
    assert verify.verify(store).ok
    chain.verify_proof(proofs.prove(store, "88.118/r2-0000"), KEY.public_key)
    registry.batch_register(admin, [handle_pb2.Record(identifier="88.118/after", values=_url("u"))])
    signer.sign_pending()
    chain.verify_proof(proofs.prove(store, "88.118/after"), KEY.public_key)
    assert verify.verify(store).ok


def test_entries_written_while_the_signer_chains_wait_for_its_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(str(tmp_path / "data"))
    registry = _fill(store)
    admin = accounts.Account(name="admin", role=accounts.ADMIN, prefixes=[], created=0)
    signer = Signer(store, KEY)
    chain_new = signer._chain_new

    def then_a_write() -> None:
        chain_new()
        registry.create(admin, "88.118.8/meanwhile", _url("https://example.com/meanwhile"))

    monkeypatch.setattr(signer, "_chain_new", then_a_write)
    made = signer.sign_pending()
    assert made[-1].last_sequence == len(_entries(store)) - 1  # all but the one meanwhile
    monkeypatch.undo()
    assert signer.sign_pending()[-1].last_sequence == len(_entries(store))
    assert verify.verify(store).ok


def test_trimming_entries_the_signer_has_not_reached_chains_them_first(tmp_path: Path) -> None:
    store = _open(str(tmp_path / "data"))
    registry = _fill(store)
    Signer(store, KEY).sign_pending()
    admin = accounts.Account(name="admin", role=accounts.ADMIN, prefixes=[], created=0)
    for n in range(20):
        registry.create(admin, f"88.118.8/more-{n}", _url("https://example.com/more"))
    entries = _entries(store)
    retention.trim(store, keep_entries=10, max_entries=10, cursors=[])
    with store.read() as txn:
        first = store.first_sequence(txn)
        assert chainlog.chained_to(txn, store) == first - 1  # what it dropped, chained first
    assert verify.verify(store).ok
    Signer(store, KEY).sign_pending()
    assert _stored_chain_from(store, first) == chain.advance(chain.GENESIS, entries)[first - 1 :]
    report = verify.verify(store)
    assert report.ok and f"signed up to {entries[-1].sequence}" in report.chain
    chain.verify_proof(proofs.prove(store, "88.118.8/more-19"), KEY.public_key)


def test_an_import_trimmed_before_any_chain_starts_it_at_the_oldest_entry_kept(
    tmp_path: Path,
) -> None:
    store = _open(str(tmp_path / "data"))
    _fill(store)  # never chained, never signed: what `idnode populate` leaves
    entries = _entries(store)
    retention.trim(store, keep_entries=10, max_entries=10, cursors=[])
    with store.read() as txn:
        first = store.first_sequence(txn)
        assert chainlog.origin(txn, store) == (first, chain.GENESIS)
        assert chainlog.chained_to(txn, store) == first - 1  # nothing computed for the rest
    Signer(store, KEY).sign_pending()
    assert _stored_chain_from(store, first) == chain.advance(chain.GENESIS, entries[first - 1 :])
    assert verify.verify(store).ok
    chain.verify_proof(proofs.prove(store, entries[-2].identifier), KEY.public_key)


def _stored_chain_from(store: Store, first: int) -> list[bytes]:
    with store.read() as txn:
        return chainlog.leaves(txn, store, first, store.last_sequence(txn))


def _as_schema_3(data_dir: str) -> None:
    """Make the store what the build before the chain left: no chain databases, schema 3."""
    env = lmdb.open(data_dir, max_dbs=16, map_size=64 << 20)
    try:
        with env.begin(write=True) as txn:
            for name in (b"chain", b"checkpoints"):
                txn.drop(env.open_db(name, txn=txn), delete=True)
            meta = env.open_db(b"meta", txn=txn)
            txn.put(b"schema", b"3", db=meta)
            txn.delete(chainlog.ORIGIN_KEY, db=meta)
    finally:
        env.close()


def test_a_schema_3_store_is_backed_up_then_chained_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = str(tmp_path / "data")
    store = _open(data_dir)
    _fill(store)
    Signer(store, KEY).sign_pending()
    expected = _stored_chain(store)
    entries = _entries(store)
    store.close()
    _as_schema_3(data_dir)

    readonly = Store(data_dir, StoreOptions(readonly=True))
    before = verify.verify(readonly)
    readonly.close()
    assert before.ok and "no hash chain yet" in before.chain

    monkeypatch.setattr(chainlog, "UPGRADE_CHUNK_ENTRIES", 7)  # several transactions
    store = _open(data_dir)
    with store.read() as txn:
        assert store.get_meta(txn, "schema") == SCHEMA_VERSION == b"4"
        assert store.get_meta(txn, upgrade.UPGRADING_KEY) is None
    assert _stored_chain(store) == expected
    after = verify.verify(store)
    assert after.ok and f"{len(entries)} changes chained" in after.chain
    Signer(store, KEY).sign_pending()
    chain.verify_proof(proofs.prove(store, "88.118.8/item-0003"), KEY.public_key)
    store.close()

    backups = [p for p in os.listdir(data_dir) if p.startswith("backup-schema-3-")]
    assert len(backups) == 1
    old = Store(os.path.join(data_dir, backups[0]), StoreOptions(readonly=True))
    with old.read() as txn:
        assert old.get_meta(txn, "schema") == b"3"
        assert old.last_sequence(txn) == len(entries)
    assert old.chain is None
    old.close()


def test_an_upgrade_cut_short_resumes_without_another_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = str(tmp_path / "data")
    store = _open(data_dir)
    _fill(store)
    Signer(store, KEY).sign_pending()
    expected = _stored_chain(store)
    store.close()
    _as_schema_3(data_dir)
    monkeypatch.setattr(chainlog, "UPGRADE_CHUNK_ENTRIES", 5)
    calls = 0
    real = upgrade._chain_some

    def dies_once(store: Store, after: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # killed mid-way
        return real(store, after)

    monkeypatch.setattr(upgrade, "_chain_some", dies_once)
    with pytest.raises(KeyboardInterrupt):
        _open(data_dir)
    store = _open(data_dir)
    assert _stored_chain(store) == expected
    assert verify.verify(store).ok
    store.close()
    assert len([p for p in os.listdir(data_dir) if p.startswith("backup-schema-3-")]) == 1


def test_a_store_of_a_newer_schema_is_refused_naming_both(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    store = _open(data_dir)
    store.write(lambda batch: batch.put_meta("schema", b"5"))
    store.close()
    with pytest.raises(
        StoreError, match="schema version 5, this build reads 4: it was written by a newer idnode"
    ):
        _open(data_dir)


# Group commit: several writes share one transaction -----------------------------------


def _chained_as_logged(store: Store) -> None:
    Signer(store, KEY).sign_pending()
    entries = _entries(store)
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert _stored_chain(store) == chain.advance(chain.GENESIS, entries)
    assert verify.verify(store).ok


def test_writes_sharing_a_group_commit_chain_as_if_each_had_committed_alone(
    tmp_path: Path,
) -> None:
    store = _open(str(tmp_path / "data"))
    keys = [f"88.118/g{i}" for i in range(12)]
    works = [groups.put(key, f"https://example.com/{key}".encode()) for key in keys]
    works[5] = groups.put_then_fail(keys[5], ValueError("fails alone"))  # the nested path
    outcomes = groups.one_group(store, works, keys)
    assert set(outcomes.errors) == {5}
    outcomes.results.pop(groups.FIRST)
    assert len({txn_id for _sequence, txn_id in outcomes.results.values()}) == 1  # one group
    _chained_as_logged(store)
    outcomes = groups.one_group(store, [groups.put(f"88.118/h{i}") for i in range(8)],
                                [f"88.118/h{i}" for i in range(8)])  # fmt: skip
    assert not outcomes.errors  # this time every write ran in the transaction itself
    _chained_as_logged(store)
    for key in keys[:5] + keys[6:]:
        proof = proofs.prove(store, key)
        assert chain.verify_proof(proof, KEY.public_key).sequence == proof.entry.sequence


def test_concurrent_single_writes_through_the_registry_keep_one_chain(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"), StoreOptions(durable=True, map_size_bytes=64 << 20))
    registry = Registry(store, NODE_PREFIX)
    registry.ensure_node_prefix()
    admin = accounts.Account(name="admin", role=accounts.ADMIN, prefixes=[], created=0)
    failed: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(40):
                registry.create(admin, f"88.118/t{n}-{i}", _url(f"https://example.com/{n}/{i}"))
        except BaseException as error:
            failed.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failed == []
    assert len(_entries(store)) == 1 + 240  # the node prefix, then the creates
    _chained_as_logged(store)


# A new key, or a promoted copy: the node re-signs what it holds ------------------------


def test_checkpoints_of_another_key_are_re_signed_with_the_nodes_own(tmp_path: Path) -> None:
    store = _open(str(tmp_path / "data"))
    _fill(store)
    made = Signer(store, KEY).sign_pending()
    other = sm2.PrivateKey.generate()
    signer = Signer(store, other)
    assert signer.resign_foreign() == len(made)
    with store.read() as txn:
        kept = list(chainlog.checkpoints(txn, store))
    assert [(c.first_sequence, c.last_sequence, c.merkle_root) for c in kept] == [
        (c.first_sequence, c.last_sequence, c.merkle_root) for c in made
    ]
    for checkpoint in kept:
        chain.check_checkpoint(checkpoint, other.public_key)
    assert signer.resign_foreign() == 0  # its own now
    proof = proofs.prove(store, "88.118.8/item-0001")
    chain.verify_proof(proof, other.public_key)
    with pytest.raises(chain.ChainError, match="signature"):
        chain.verify_proof(proof, KEY.public_key)


def test_on_a_full_disk_the_signer_waits_without_a_refused_write(tmp_path: Path) -> None:
    with full_disk.tmpfs(tmp_path / "disk", 16 << 20) as disk:
        store = _open(str(disk / "data"))
        _fill(store)
        full_disk.fill_up(disk)
        before = metrics.STORE_OUT_OF_SPACE._value.get()
        assert Signer(store, KEY).sign_pending() == []
        assert metrics.STORE_OUT_OF_SPACE._value.get() == before
        os.unlink(disk / "filler")
        assert Signer(store, KEY).sign_pending()
        assert verify.verify(store).ok
        store.close()


def test_a_published_key_that_is_no_sm2_key_is_reported_not_replaced_by_the_key_file(
    tmp_path: Path,
) -> None:
    store = _open(str(tmp_path / "store"))
    try:
        Registry(store, NODE_PREFIX).ensure_node_prefix()
        store.write(lambda batch: batch.put_meta("node_prefix", NODE_PREFIX.encode()))
        nodekey.ensure(store, NODE_PREFIX)  # the key file, and its key published
        handle = nodekey.prefix_handle(NODE_PREFIX)
        garbage = HandleValue(index=nodekey.KEY_INDEX, type=nodekey.KEY_TYPE, data=b"no key")
        managed.put_values(store, handle, [garbage])
        with store.read() as txn:
            with pytest.raises(nodekey.PublishedKeyInvalid):
                nodekey.published_key(store, txn)
            key, where = verifychain.public_key(store, txn)
        assert key is None and where == f"HS_PUBKEY of {handle} is not an SM2 key"
    finally:
        store.close()
