"""The one table from domain errors to gRPC status codes."""

from __future__ import annotations

import grpc

from registry import errors

STATUS_BY_ERROR: dict[type[errors.IdnodeError], grpc.StatusCode] = {
    errors.IdnodeError: grpc.StatusCode.UNKNOWN,
    errors.InvalidIdentifier: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidValue: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.HandleNotFound: grpc.StatusCode.NOT_FOUND,
    errors.HandleAlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.ValueNotFound: grpc.StatusCode.NOT_FOUND,
    errors.ValueAlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.PrefixNotFound: grpc.StatusCode.NOT_FOUND,
    errors.PrefixAlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.NotResponsible: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Referred: grpc.StatusCode.OK,  # answered with a referral, not an error
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.AuthenticationRequired: grpc.StatusCode.UNAUTHENTICATED,
    errors.AuthenticationFailed: grpc.StatusCode.UNAUTHENTICATED,
    errors.TokenExpired: grpc.StatusCode.UNAUTHENTICATED,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.StoreError: grpc.StatusCode.UNAVAILABLE,
    errors.StoreOutOfSpace: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.SyncRefused: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ReadOnlyReplica: grpc.StatusCode.FAILED_PRECONDITION,  # names the primary
    errors.SequenceNotReached: grpc.StatusCode.UNAVAILABLE,  # retry, here or elsewhere
    errors.ChainBroken: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ProofUnavailable: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ProofNotReady: grpc.StatusCode.UNAVAILABLE,
}


def status_of(error: errors.IdnodeError) -> grpc.StatusCode:
    """The status for `error`, by its class or the nearest ancestor in the table."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return grpc.StatusCode.UNKNOWN


class RpcFailure(Exception):
    """A status to end the call with, already decided (cached negative answers)."""

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
