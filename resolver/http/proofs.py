"""`GET /api/handles/{id}?proof=true`: the record as its signed change wrote it, and the proof."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence

from proto import handle_pb2
from registry import nodekey, proofs, values
from registry.errors import IdnodeError
from registry.store import Store
from resolver.http import answers, formats
from resolver.http.cache import Encoded, encoded

PROOF_FORMAT = "idnode-chain-proof-1"  # docs/security.md: what each field holds


def proven(
    store: Store, identifier: str, types: Sequence[str], indexes: Sequence[int], restricted: bool
) -> Encoded:
    """The REST JSON of `identifier`'s signed values, filtered like any GET, with a
    "proof" member (blocking: one read of the store; registry.proofs)."""
    try:
        proof = proofs.prove_readable(store, identifier, restricted)
    except IdnodeError as error:
        return answers.rest_error(error, identifier, True, "ok")
    shown = answers.select(proof.entry.record.values, types, indexes, restricted)
    if (types or indexes) and not shown:
        missing = values.none_matching(identifier, types, indexes)
        return answers.rest_error(missing, identifier, True, "ok")
    document = {
        "responseCode": answers.SUCCESS,
        "handle": identifier,
        "values": [formats.value_json(v) for v in shown],
        "proof": proof_json(proof),
    }
    return encoded(200, answers.JSON + answers.NO_CACHE, answers.dump(document), "ok")


def proof_json(proof: handle_pb2.ChainProof) -> dict[str, object]:
    """The proof as the REST API shows it: the whole ChainProof message (base64), which is
    what a verifier checks, and its main fields spelt out for people."""
    checkpoint = proof.checkpoint
    entry = proof.entry
    return {
        "format": PROOF_FORMAT,
        "chainProof": base64.b64encode(proof.SerializeToString()).decode("ascii"),
        "sequence": entry.sequence,
        "operation": handle_pb2.ChangeEntry.Operation.Name(entry.operation).lower(),
        "written": _time(entry.timestamp_ns),
        "checkpoint": {
            "logId": checkpoint.log_id,
            "firstSequence": checkpoint.first_sequence,
            "lastSequence": checkpoint.last_sequence,
            "signed": _time(checkpoint.signed_ns),
            "headHash": checkpoint.head_hash.hex(),
            "merkleRoot": checkpoint.merkle_root.hex(),
            "signature": checkpoint.signature.hex(),
        },
        "publicKey": {"type": nodekey.KEY_TYPE, "index": nodekey.KEY_INDEX},
    }


def _time(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
