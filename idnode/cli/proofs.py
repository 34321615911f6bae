"""`idnode resolve --verify`: check a resolve answer against the node's signed change log.

The node returns, with the answer, the change-log entry that wrote the record, the chain
proof to a checkpoint and the checkpoint signed with its SM2 key (docs/security.md).
The key is the one given with --public-key, or the HS_PUBKEY value the answering node
publishes on its prefix record (0.NA/<node prefix>).
"""

from __future__ import annotations

import argparse
import datetime
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from idnode.cli import client
from proto import handle_pb2, resolver_pb2
from registry import chain
from registry.crypto import sm2, sm3
from registry.identifier import parent_prefixes, parse
from registry.nodekey import KEY_TYPE, PREFIX_HANDLE

NOT_READY_WAIT_SECONDS = 3.0  # a fresh write is signed within about a second
_WITH_RECORD = (handle_pb2.ChangeEntry.CREATE, handle_pb2.ChangeEntry.UPDATE)


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also ask for the proof that these values are the ones the node signed: the "
        "change that wrote the record, its SM3 hash-chain path and the SM2-signed checkpoint, "
        "checked here against the node's public key; says what was verified, exit 1 when "
        "it does not hold (a change not signed yet, about a second after its write, is "
        f"waited for up to {NOT_READY_WAIT_SECONDS:g} s)",
    )
    parser.add_argument(
        "--public-key",
        metavar="FILE|HEX",
        help="with --verify, the node's SM2 public key: a PEM file or the point as 130 hex "
        "digits (default: the HS_PUBKEY value of the node's prefix record 0.NA/<node "
        "prefix>, asked of the node that answers, which proves the values are what that "
        "key signed; give the key you got from the top-level node or the operator to know "
        "the key is the node's)",
    )


@dataclass
class Outcome:
    """What --verify found: `ok`, and lines and a JSON object saying what was checked."""

    ok: bool
    document: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def resolve_with_proof(
    stub: Any, request: resolver_pb2.ResolveRequest, args: argparse.Namespace, token: str | None
) -> resolver_pb2.ResolveResponse:
    """Resolve, waiting a little while the node has not signed the change yet."""
    deadline = time.monotonic() + NOT_READY_WAIT_SECONDS
    while True:
        try:
            reply: resolver_pb2.ResolveResponse = stub.Resolve(
                request, metadata=client.metadata(token), timeout=args.timeout
            )
            return reply
        except grpc.RpcError as error:
            not_ready = isinstance(error, grpc.Call) and "not signed yet" in (error.details() or "")
            if not not_ready or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def check(
    args: argparse.Namespace,
    reply: resolver_pb2.ResolveResponse,
    opened: grpc.Channel,
    server: str,
) -> Outcome:
    """Check `reply`'s proof; `opened` reaches `server`, the node that answered."""
    if not reply.HasField("proof"):
        return _failed("the node sent no proof")
    try:
        key, source = _public_key(args, reply.identifier, opened, server)
    except (sm2.SM2Error, OSError, grpc.RpcError) as error:
        reason = error.details() if isinstance(error, grpc.Call) else str(error)
        return _failed(f"no public key to check it with: {reason}")
    try:
        verified = chain.verify_proof(reply.proof, key)
        _check_record(reply, args)
    except chain.ChainError as error:
        return _failed(str(error), source)
    return _verified(reply, verified, key, source)


def _failed(reason: str, source: str = "") -> Outcome:
    document: dict[str, Any] = {"verified": False, "reason": reason}
    if source:
        document["public_key_from"] = source
    return Outcome(False, document, [f"NOT VERIFIED: {reason}"])


def _public_key(
    args: argparse.Namespace, identifier: str, opened: grpc.Channel, server: str
) -> tuple[sm2.PublicKey, str]:
    if args.public_key:
        text = args.public_key.encode()
        if not text.strip().startswith(b"-----") and len(text.strip()) != 2 * sm2.POINT_BYTES:
            with open(args.public_key, "rb") as key_file:
                text = key_file.read(sm2.MAX_PEM_BYTES)
        return sm2.PublicKey.from_text(text), "--public-key"
    stub = client.resolver_stub(opened)
    for prefix in parent_prefixes(parse(identifier).prefix):
        handle = PREFIX_HANDLE + prefix
        try:
            record = stub.Resolve(
                resolver_pb2.ResolveRequest(identifier=handle, types=[KEY_TYPE]),
                timeout=args.timeout,
            )
        except grpc.RpcError:
            continue  # not this node's prefix record
        for value in record.values:
            if value.type.upper() == KEY_TYPE:
                return sm2.PublicKey.from_text(value.data), f"{KEY_TYPE} of {handle} at {server}"
    raise sm2.SM2Error(f"no {KEY_TYPE} on the prefix records ({PREFIX_HANDLE}<prefix>) at {server}")


def _check_record(reply: resolver_pb2.ResolveResponse, args: argparse.Namespace) -> None:
    """The answer is the proven entry's record: same identifier, and each value shown is
    one of the entry's, all of them when no filter was asked for. Raises ChainError."""
    entry = reply.proof.entry
    if entry.identifier != reply.identifier or entry.operation not in _WITH_RECORD:
        raise chain.ChainError(f"the proof is for {entry.identifier!r}, not {reply.identifier!r}")
    signed = {v.index: v.SerializeToString(deterministic=True) for v in entry.record.values}
    shown = {v.index: v.SerializeToString(deterministic=True) for v in reply.values}
    for index, value in shown.items():
        if signed.get(index) != value:
            raise chain.ChainError(f"value {index} differs from the one the node signed")
    if not (args.type or args.index) and shown.keys() != signed.keys():
        raise chain.ChainError("the answer does not hold every value the node signed")


def _verified(
    reply: resolver_pb2.ResolveResponse, verified: chain.Verified, key: sm2.PublicKey, source: str
) -> Outcome:
    checkpoint = verified.checkpoint
    entry = reply.proof.entry
    fingerprint = sm3.digest(key.point).hex()[:16]
    written = _time(entry.timestamp_ns)
    signed = _time(checkpoint.signed_ns)
    operation = handle_pb2.ChangeEntry.Operation.Name(entry.operation)
    document = {
        "verified": True,
        "sequence": verified.sequence,
        "operation": operation.lower(),
        "written": written,
        "log_id": checkpoint.log_id,
        "checkpoint": [checkpoint.first_sequence, checkpoint.last_sequence],
        "signed": signed,
        "head_hash": checkpoint.head_hash.hex(),
        "public_key_sm3": fingerprint,
        "public_key_from": source,
    }
    lines = [
        f"verified: these values are those that change {verified.sequence} ({operation}, "
        f"{written}) of change log {checkpoint.log_id} wrote for {reply.identifier};",
        f"  its SM3 chain leads to checkpoint {checkpoint.first_sequence}.."
        f"{checkpoint.last_sequence}, signed {signed} with SM2 key {fingerprint}… "
        f"(from {source})",
        "  (a later change, if any, would have its own proof: this shows what the node "
        "signed, not that nothing changed since)",
    ]
    return Outcome(True, document, lines)


def _time(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
