"""The top-level node refuses what does not hash to the node's signed checkpoints."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from proto import handle_pb2
from registry import chain
from registry.crypto import sm2
from registry.errors import ChainBroken, InvalidRequest, SyncRefused
from registry.store import Store, StoreOptions
from sync.toplevel.mirror import Mirror

KEY = sm2.PrivateKey.generate()
LOG = "log-1"


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    store = Store(str(tmp_path / "mirror"), StoreOptions(map_size_bytes=64 << 20, durable=False))
    made = Mirror(store)
    made.add_node("88.118", [handle_pb2.Site(grpc_address="127.0.0.1:1")])
    made.hello("88.118", LOG, [], public_key=KEY.public_key.point)
    return made


def _entries(first: int, count: int, tag: str = "") -> list[handle_pb2.ChangeEntry]:
    made = []
    for n in range(first, first + count):
        entry = handle_pb2.ChangeEntry(
            sequence=n, operation=handle_pb2.ChangeEntry.CREATE, identifier=f"88.118/item-{n}"
        )
        entry.record.values.add(index=1, type="URL", data=f"https://example.com/{n}{tag}".encode())
        made.append(entry)
    return made


def _sign(
    entries: list[handle_pb2.ChangeEntry], previous: bytes, key: sm2.PrivateKey = KEY
) -> handle_pb2.Checkpoint:
    hashes = chain.advance(previous, entries)
    return chain.make_checkpoint(LOG, entries[0].sequence, previous, hashes, key, time.time_ns())


def test_signed_entries_apply_and_the_mirror_keeps_their_chain_hash(mirror: Mirror) -> None:
    first = _entries(1, 10)
    one = _sign(first[:6], chain.GENESIS)
    two = _sign(first[6:], one.head_hash)
    assert mirror.apply("88.118", LOG, first[:8], checkpoints=[one]).acked_sequence == 8
    state = mirror.node("88.118")
    assert state.checkpoint_sequence == 6
    assert state.chain_hash == chain.advance(chain.GENESIS, first[:8])[-1]
    # The rest, with the checkpoint that began in the previous push.
    assert mirror.apply("88.118", LOG, first[6:], checkpoints=[two]).acked_sequence == 10
    assert mirror.node("88.118").checkpoint_sequence == 10
    assert mirror.node("88.118").chain_hash == two.head_hash


def test_an_altered_entry_is_refused_and_nothing_of_the_push_is_applied(mirror: Mirror) -> None:
    entries = _entries(1, 5)
    checkpoint = _sign(entries, chain.GENESIS)
    entries[2].record.values[0].data = b"https://evil.example.com/"
    with pytest.raises(ChainBroken, match=r"checkpoint 1\.\.5: the changes received do not hash"):
        mirror.apply("88.118", LOG, entries, checkpoints=[checkpoint])
    assert mirror.node("88.118").acked_sequence == 0
    assert mirror.mirror_records("88.118") == {}


@pytest.mark.parametrize("how", ["reordered", "missing", "replayed"])
def test_reordered_or_missing_entries_are_refused(mirror: Mirror, how: str) -> None:
    entries = _entries(1, 5)
    checkpoint = _sign(entries, chain.GENESIS)
    sent = [handle_pb2.ChangeEntry() for _ in entries]
    for copy, entry in zip(sent, entries, strict=True):
        copy.CopyFrom(entry)
    if how == "reordered":  # same sequences, contents swapped
        sent[1].record.CopyFrom(entries[2].record)
        sent[2].record.CopyFrom(entries[1].record)
        sent[1].identifier, sent[2].identifier = entries[2].identifier, entries[1].identifier
    elif how == "missing":  # an entry dropped, the later ones renumbered
        del sent[2]
        for n, entry in enumerate(sent, start=1):
            entry.sequence = n
        sent.append(_entries(5, 1, "-forged")[0])
    else:  # an older entry's content under a newer sequence
        sent[4].record.CopyFrom(entries[0].record)
    with pytest.raises(ChainBroken):
        mirror.apply("88.118", LOG, sent, checkpoints=[checkpoint])
    assert mirror.node("88.118").acked_sequence == 0


def test_a_checkpoint_signed_by_another_key_is_refused(mirror: Mirror) -> None:
    entries = _entries(1, 3)
    forged = _sign(entries, chain.GENESIS, sm2.PrivateKey.generate())
    with pytest.raises(ChainBroken, match="signature does not verify"):
        mirror.apply("88.118", LOG, entries, checkpoints=[forged])


def test_too_many_unsigned_entries_are_refused(mirror: Mirror) -> None:
    entries = _entries(1, chain.MAX_RANGE_ENTRIES + 1)
    with pytest.raises(ChainBroken, match="past its last signed checkpoint"):
        mirror.apply("88.118", LOG, entries)
    assert mirror.apply("88.118", LOG, entries[:20]).acked_sequence == 20  # within one range


def test_another_key_at_hello_is_refused_until_a_reset(mirror: Mirror) -> None:
    other = sm2.PrivateKey.generate().public_key.point
    with pytest.raises(SyncRefused, match="another SM2 public key"):
        mirror.hello("88.118", LOG, [], public_key=other)
    mirror.reset("88.118")
    assert mirror.hello("88.118", LOG, [], public_key=other).registered
    with pytest.raises(InvalidRequest, match="not a point"):
        mirror.hello("88.118", LOG, [], public_key=b"\x04" + bytes(64))


def test_a_snapshot_needs_its_checkpoint_and_the_chain_resumes_from_it(mirror: Mirror) -> None:
    entries = _entries(1, 4)
    checkpoint = _sign(entries, chain.GENESIS)
    with pytest.raises(ChainBroken, match="no signed checkpoint ends at"):
        mirror.begin_snapshot("88.118", LOG, 4)
    with pytest.raises(ChainBroken, match="signature"):
        mirror.begin_snapshot(
            "88.118", LOG, 4, checkpoint=_sign(entries, chain.GENESIS, sm2.PrivateKey.generate())
        )
    mirror.begin_snapshot("88.118", LOG, 4, checkpoint=checkpoint)
    mirror.finish_snapshot("88.118", LOG, 4, checkpoint.head_hash)
    following = _entries(5, 2)
    assert (
        mirror.apply(
            "88.118", LOG, following, checkpoints=[_sign(following, checkpoint.head_hash)]
        ).acked_sequence
        == 6
    )
    with pytest.raises(ChainBroken):
        more = _entries(7, 2)
        mirror.apply("88.118", LOG, more, checkpoints=[_sign(more, chain.GENESIS)])


def test_a_mirror_from_before_checkpoints_asks_for_a_snapshot(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "mirror"), StoreOptions(map_size_bytes=64 << 20, durable=False))
    mirror = Mirror(store)
    mirror.add_node("88.118", [])
    mirror.hello("88.118", LOG, [])  # a node of the version before: no key, not checked
    assert mirror.apply("88.118", LOG, _entries(1, 3)).acked_sequence == 3
    mirror.hello("88.118", LOG, [], public_key=KEY.public_key.point)  # upgraded, now signs
    reply = mirror.apply("88.118", LOG, _entries(4, 1))
    assert reply.snapshot_needed
