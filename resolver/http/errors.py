"""The one table from domain errors to HTTP status codes (the Handle code rides in the body)."""

from __future__ import annotations

from registry import errors

# Handle's REST mapping: 1 -> 200, 2 -> 500, 100 -> 404, 101 -> 409, 102 -> 400,
# 200 -> 400 (200 on resolve), 201 -> 409, 202 -> 400, 301 -> 400, 402 -> 401,
# other 40x -> 403. Two choices HTTP itself dictates: a credential that was sent and
# refused is 401 (RFC 9110 §15.5.2), and a request over a size limit is 413.
STATUS_BY_ERROR: dict[type[errors.IdnodeError], int] = {
    errors.IdnodeError: 500,
    errors.InvalidIdentifier: 400,
    errors.InvalidValue: 400,
    errors.InvalidRequest: 400,
    errors.HandleNotFound: 404,
    errors.HandleAlreadyExists: 409,
    errors.ValueNotFound: 400,
    errors.ValueAlreadyExists: 409,
    errors.PrefixNotFound: 404,
    errors.PrefixAlreadyExists: 409,
    errors.NotResponsible: 400,
    errors.Referred: 400,  # answered by a redirect or a server-side follow, never raised
    errors.PermissionDenied: 403,
    errors.AuthenticationRequired: 401,
    errors.AuthenticationFailed: 401,
    errors.TokenExpired: 401,
    errors.TooLarge: 413,
    errors.StoreError: 500,
    errors.StoreOutOfSpace: 507,  # Insufficient Storage: writes fail until space is freed
    errors.SyncRefused: 409,  # a copy that conflicts with what the top-level node holds
    errors.Unavailable: 503,
    # A replica answers a write with 307 to its primary's HTTP face; 503 when it knows none.
    errors.ReadOnlyReplica: 503,
    errors.SequenceNotReached: 503,  # with Retry-After: ask again, or ask another node
    errors.ChainBroken: 409,
    errors.ProofUnavailable: 409,  # no proof exists for this record
    errors.ProofNotReady: 503,  # not signed yet: ask again
}
# A resolve that found the identifier but no value matching its filters is a success
# with nothing to show (Handle code 200), not a failure.
RESOLVE_STATUS_BY_ERROR: dict[type[errors.IdnodeError], int] = {errors.ValueNotFound: 200}


def status_of(error: errors.IdnodeError, resolving: bool = False) -> int:
    """The HTTP status for `error`, by its class or the nearest ancestor in the table."""
    for cls in type(error).__mro__:
        if resolving and cls in RESOLVE_STATUS_BY_ERROR:
            return RESOLVE_STATUS_BY_ERROR[cls]
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500
