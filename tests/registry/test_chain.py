"""The chain's pieces: canonical entry bytes, RFC 9162 Merkle trees, checkpoints, proofs."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proto import handle_pb2
from registry import chain
from registry.crypto import sm2, sm3

Op = handle_pb2.ChangeEntry
KEY = sm2.PrivateKey.generate()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, as written there (recursive, k the largest power of 2 < n)."""
    if len(leaves) == 1:
        return sm3.digest(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sm3.digest(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:]))


def _hashes(count: int) -> list[bytes]:
    return [sm3.digest(n.to_bytes(4, "big")) for n in range(count)]


values = st.builds(
    handle_pb2.HandleValue,
    index=st.integers(1, 2**31),
    type=st.text(max_size=20),
    data=st.binary(max_size=100),
    timestamp=st.integers(-(2**40), 2**40),
)


@given(
    sequence=st.integers(1, 2**63),
    operation=st.sampled_from([Op.CREATE, Op.UPDATE]),
    identifier=st.text(min_size=1, max_size=40),
    stored=st.lists(values, max_size=5),
    timestamp_ns=st.integers(0, 2**62),
)
def test_canonical_bytes_from_parts_match_those_from_the_message(
    sequence: int, operation: handle_pb2.ChangeEntry.Operation, identifier: str, stored: list[handle_pb2.HandleValue],
    timestamp_ns: int,
) -> None:  # fmt: skip
    head = handle_pb2.ChangeEntry(
        sequence=sequence, operation=operation, identifier=identifier, timestamp_ns=timestamp_ns
    )
    plain = handle_pb2.Record(values=stored).SerializeToString()
    whole = handle_pb2.ChangeEntry()
    whole.CopyFrom(head)
    whole.record.values.extend(stored)
    from_parts = chain.with_record(head.SerializeToString(), identifier.encode(), plain)
    assert chain.entry_bytes(whole) == from_parts
    assert handle_pb2.ChangeEntry.FromString(from_parts).record.identifier == identifier


def test_canonical_bytes_ignore_where_the_record_came_from() -> None:
    entry = handle_pb2.ChangeEntry(sequence=3, operation=Op.UPDATE, identifier="88.1/x")
    entry.record.values.add(index=1, type="URL", data=b"https://a")
    other = handle_pb2.ChangeEntry()
    other.CopyFrom(entry)
    other.record.identifier = "something else"  # the entry's identifier is what counts
    assert chain.entry_bytes(entry) == chain.entry_bytes(other)
    other.record.values[0].data = b"https://b"
    assert chain.entry_bytes(entry) != chain.entry_bytes(other)


def test_entries_without_a_record_hash_as_serialised() -> None:
    entry = handle_pb2.ChangeEntry(sequence=9, operation=Op.DELETE, identifier="88.1/x")
    assert chain.entry_bytes(entry) == entry.SerializeToString()


@pytest.mark.parametrize("size", [*range(1, 34), 100, 1023, 1024])
def test_merkle_root_is_rfc_9162s_and_every_audit_path_leads_to_it(size: int) -> None:
    leaves = _hashes(size)
    root = chain.merkle_root(leaves)
    assert root == _mth(leaves)
    for index in {0, size // 3, size // 2, size - 1, *range(min(size, 9))}:
        path = chain.audit_path(leaves, index)
        assert len(path) <= 10
        assert chain.root_from_path(leaves[index], index, size, path) == root
        if size > 1:
            assert (
                chain.root_from_path(
                    leaves[index ^ 1 if index ^ 1 < size else 0], index, size, path
                )
                != root
            )


@pytest.mark.parametrize(
    ("index", "size", "path_hashes"),
    [(5, 5, 3), (-1, 5, 3), (0, 1, 1), (0, 8, 2), (0, 8, 4), (0, 2**70, 65)],
)
def test_impossible_audit_paths_are_refused(index: int, size: int, path_hashes: int) -> None:
    with pytest.raises(chain.ChainError):
        chain.root_from_path(bytes(32), index, size, [bytes(32)] * path_hashes)


def _signed_range(
    count: int, first: int = 1
) -> tuple[list[handle_pb2.ChangeEntry], list[bytes], handle_pb2.Checkpoint]:
    entries = []
    for n in range(first, first + count):
        entry = handle_pb2.ChangeEntry(sequence=n, operation=Op.CREATE, identifier=f"88.1/{n}")
        entry.record.values.add(index=1, type="URL", data=f"https://example.com/{n}".encode())
        entries.append(entry)
    previous = chain.GENESIS if first == 1 else sm3.digest(b"before")
    hashes = chain.advance(previous, entries)
    checkpoint = chain.make_checkpoint("log", first, previous, hashes, KEY, time.time_ns())
    return entries, hashes, checkpoint


def test_a_checkpoint_verifies_and_any_changed_field_breaks_its_signature() -> None:
    checkpoint = _signed_range(5)[2]
    chain.check_checkpoint(checkpoint, KEY.public_key)
    for name, value in [
        ("first_sequence", 2), ("last_sequence", 4), ("previous_hash", b"\x01" * 32),
        ("head_hash", b"\x02" * 32), ("merkle_root", b"\x03" * 32), ("signed_ns", 1),
        ("log_id", "other"),
    ]:  # fmt: skip
        altered = handle_pb2.Checkpoint()
        altered.CopyFrom(checkpoint)
        setattr(altered, name, value)
        with pytest.raises(chain.ChainError, match="signature does not verify"):
            chain.check_checkpoint(altered, KEY.public_key)
    with pytest.raises(chain.ChainError, match="signature"):
        chain.check_checkpoint(checkpoint, sm2.PrivateKey.generate().public_key)


@pytest.mark.parametrize("count", [1, 2, 7, 64])
def test_a_proof_of_each_entry_verifies(count: int) -> None:
    entries, hashes, checkpoint = _signed_range(count, first=41)
    previous = [checkpoint.previous_hash, *hashes[:-1]]
    for position, entry in enumerate(entries):
        proof = chain.make_proof(entry, previous[position], hashes, checkpoint)
        wire = handle_pb2.ChainProof.FromString(proof.SerializeToString())
        verified = chain.verify_proof(wire, KEY.public_key)
        assert verified.sequence == entry.sequence
        assert verified.chain_hash == hashes[position]
        assert proof.ByteSize() < 600


def test_a_proof_of_an_altered_entry_fails() -> None:
    entries, hashes, checkpoint = _signed_range(10)
    proof = chain.make_proof(entries[4], hashes[3], hashes, checkpoint)
    proof.entry.record.values[0].data = b"https://evil.example.com/"
    with pytest.raises(chain.ChainError, match="not the entry the checkpoint"):
        chain.verify_proof(proof, KEY.public_key)


def test_a_proof_moved_to_another_sequence_fails() -> None:
    entries, hashes, checkpoint = _signed_range(10)
    proof = chain.make_proof(entries[4], hashes[3], hashes, checkpoint)
    proof.entry.sequence = 6
    with pytest.raises(chain.ChainError):
        chain.verify_proof(proof, KEY.public_key)
    proof.entry.sequence = 11
    with pytest.raises(chain.ChainError, match="outside the checkpoint's range"):
        chain.verify_proof(proof, KEY.public_key)


def test_a_proof_with_a_forged_previous_hash_fails() -> None:
    entries, hashes, checkpoint = _signed_range(4)
    proof = chain.make_proof(entries[0], sm3.digest(b"x"), hashes, checkpoint)
    with pytest.raises(chain.ChainError, match="differs from the checkpoint's"):
        chain.verify_proof(proof, KEY.public_key)
    proof = chain.make_proof(entries[2], sm3.digest(b"x"), hashes, checkpoint)
    with pytest.raises(chain.ChainError, match="not the entry"):
        chain.verify_proof(proof, KEY.public_key)


def test_checkpoints_cover_a_bounded_range() -> None:
    with pytest.raises(chain.ChainError, match="1 to 1024"):
        chain.make_checkpoint("log", 1, chain.GENESIS, _hashes(1025), KEY, 0)
    checkpoint = _signed_range(3)[2]
    checkpoint.last_sequence = checkpoint.first_sequence + chain.MAX_RANGE_ENTRIES
    with pytest.raises(chain.ChainError, match="impossible"):
        chain.check_checkpoint(checkpoint, KEY.public_key)
