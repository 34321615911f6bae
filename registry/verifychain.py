"""`idnode verify`'s check of the hash chain: each entry against its chain hash, each
checkpoint against the entries it covers and the node's SM2 key."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

import lmdb
from google.protobuf.message import DecodeError

from proto import handle_pb2
from registry import chain, chainlog, nodekey
from registry.crypto import sm2
from registry.store import Store, Txn

if TYPE_CHECKING:
    from registry.verify import Report

_SEQ = struct.Struct(">Q")


def public_key(store: Store, txn: Txn) -> tuple[sm2.PublicKey | None, str]:
    """The node's key and where it was found: its HS_PUBKEY value, else its key file (not
    in place of a published value that is no key: that is the problem to report)."""
    try:
        key, where = nodekey.published_key(store, txn)
    except nodekey.PublishedKeyInvalid as error:
        return None, str(error)
    if key is not None:
        return key, where
    path = nodekey.key_path(store.path)
    if os.path.exists(path):
        try:
            return sm2.read_key_file(path).public_key, path
        except (sm2.SM2Error, sm2.LibcryptoError) as error:
            return None, str(error)
    return None, f"{where} and no key file"


def check(store: Store, txn: Txn, report: Report) -> None:
    """Add the chain's problems to `report`, and what was checked."""
    if not store.keeps_changelog(txn):
        return
    if store.chain is None:
        report.chain = "no hash chain yet (schema 3 or older): the node adds it when it next starts"
        return
    if not chainlog.keeps_chain(txn, store):
        if txn.get(chainlog.STATE_KEY, db=store.meta) == chainlog.RECOPY:
            report.chain = "no hash chain yet: a replica's store upgraded; its next copy brings it"
        else:
            report.chain = "this copy keeps no hash chain: its primary keeps none"
        return
    entries, unchained = _check_entries(store, txn, report)
    key, source = public_key(store, txn)
    signed = _check_checkpoints(store, txn, report, key)
    unsigned = max(0, report.last_sequence - signed)
    report.chain = (
        f"{entries} changes chained"
        + (f" ({unchained} newer not yet)" if unchained else "")
        + f"; checkpoints signed up to {signed}"
        + (f" ({unsigned} newer: a running node signs within seconds)" if unsigned else "")
        + (
            f"; signatures checked with the key from {source}"
            if key
            else f"; signatures NOT checked: {source}"
        )
    )


def _check_entries(store: Store, txn: Txn, report: Report) -> tuple[int, int]:
    """Each entry hashes, after the entry before it, to its stored chain hash; returns how
    many were checked, and how many newest ones the signer has not chained yet."""
    checked = 0
    chained = chainlog.chained_to(txn, store)
    first = store.first_sequence(txn)
    try:
        previous = chainlog.hash_at(txn, store, first - 1)
    except chain.ChainError as error:
        report.problem(f"chain: {error}")
        return 0, 0
    with txn.cursor(db=store.changelog) as cursor:
        for key, raw in cursor:
            sequence = _SEQ.unpack(bytes(key))[0]
            if sequence > chained:
                return checked, report.last_sequence - chained
            stored = txn.get(bytes(key), db=store.chain)
            try:
                entry = handle_pb2.ChangeEntry.FromString(bytes(raw))
                computed = chain.link(previous, chainlog.canonical(txn, store, entry))
            except (DecodeError, lmdb.Error):  # a damaged entry or record: reported elsewhere
                previous = bytes(stored) if stored is not None else previous
                continue
            if stored is None:
                report.problem(f"change {sequence} has no chain hash")
            elif bytes(stored) != computed:
                report.problem(
                    f"change {sequence} does not hash to its chain hash: the entry (or the "
                    "record it stands for) was altered, or an entry before it"
                )
            previous = bytes(stored) if stored is not None else computed
            checked += 1
    return checked, 0


def _check_checkpoints(store: Store, txn: Txn, report: Report, key: sm2.PublicKey | None) -> int:
    """Checkpoints follow one another, state their range's head and root, and are signed
    by the node's key; returns the last sequence they cover."""
    signed = 0
    before: handle_pb2.Checkpoint | None = None
    for checkpoint in chainlog.checkpoints(txn, store):
        first, last = checkpoint.first_sequence, checkpoint.last_sequence
        where = f"checkpoint {first}..{last}"
        if before is not None and (
            first != before.last_sequence + 1 or checkpoint.previous_hash != before.head_hash
        ):
            report.problem(f"{where} does not follow checkpoint ..{before.last_sequence}")
        try:
            leaves = chainlog.leaves(txn, store, first, last)
            if key is not None:
                chain.check_checkpoint(checkpoint, key)
            if (
                leaves[-1] != checkpoint.head_hash
                or chain.merkle_root(leaves) != checkpoint.merkle_root
            ):
                report.problem(f"{where}: its head or Merkle root is not that of the chain hashes")
        except chain.ChainError as error:
            report.problem(f"{where}: {error}")
        before = checkpoint
        signed = last
    return signed
