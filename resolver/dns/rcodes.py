"""The DNS face's row of the error table: the rcode each domain error becomes."""

from __future__ import annotations

from registry import errors
from registry.errors import IdnodeError
from resolver.dns import wire

ERROR_RCODES: dict[type[IdnodeError], int] = {
    errors.IdnodeError: wire.SERVFAIL,
    errors.InvalidIdentifier: wire.NXDOMAIN,  # no identifier has that name
    errors.InvalidValue: wire.SERVFAIL,
    errors.InvalidRequest: wire.FORMERR,
    errors.HandleNotFound: wire.NXDOMAIN,
    errors.HandleAlreadyExists: wire.SERVFAIL,
    errors.ValueNotFound: wire.NOERROR,  # the name exists, the data does not: NODATA
    errors.ValueAlreadyExists: wire.SERVFAIL,
    errors.PrefixNotFound: wire.NXDOMAIN,
    errors.PrefixAlreadyExists: wire.SERVFAIL,
    errors.NotResponsible: wire.REFUSED,
    errors.Referred: wire.REFUSED,
    errors.PermissionDenied: wire.REFUSED,
    errors.AuthenticationRequired: wire.REFUSED,
    errors.AuthenticationFailed: wire.REFUSED,
    errors.TokenExpired: wire.REFUSED,
    errors.TooLarge: wire.SERVFAIL,
    errors.StoreError: wire.SERVFAIL,
    errors.StoreOutOfSpace: wire.SERVFAIL,
    errors.Unavailable: wire.SERVFAIL,
    errors.SyncRefused: wire.REFUSED,
    errors.ReadOnlyReplica: wire.REFUSED,  # DNS never writes; listed for completeness
    errors.SequenceNotReached: wire.SERVFAIL,
    errors.ChainBroken: wire.REFUSED,
    errors.ProofUnavailable: wire.SERVFAIL,  # DNS never asks for proofs
    errors.ProofNotReady: wire.SERVFAIL,
}
"""The rcode each domain error becomes when it escapes a lookup (a test checks it is complete)."""
