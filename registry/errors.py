"""Domain errors: one root, a subclass per failure, each with its Handle response code."""

from __future__ import annotations


class IdnodeError(Exception):
    """The request failed."""

    handle_code = 2  # RC_ERROR

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidIdentifier(IdnodeError):
    """The identifier is malformed."""

    handle_code = 102


class InvalidValue(IdnodeError):
    """A value is malformed."""

    handle_code = 202


class InvalidRequest(IdnodeError):
    """The request is malformed."""

    handle_code = 4


class HandleNotFound(IdnodeError):
    """The identifier does not exist."""

    handle_code = 100


class HandleAlreadyExists(IdnodeError):
    """The identifier already exists."""

    handle_code = 101


class ValueNotFound(IdnodeError):
    """No value with that index exists."""

    handle_code = 200


class ValueAlreadyExists(IdnodeError):
    """A value with that index already exists."""

    handle_code = 201


class PrefixNotFound(IdnodeError):
    """The prefix is not hosted on this node."""

    handle_code = 100


class PrefixAlreadyExists(IdnodeError):
    """The prefix is already allocated."""

    handle_code = 101


class NotResponsible(IdnodeError):
    """This node is not responsible for the prefix."""

    handle_code = 301


class Referred(IdnodeError):
    """The identifier is served by another node."""

    handle_code = 303

    def __init__(self, message: str, referral: object) -> None:
        super().__init__(message)
        self.referral = referral


class PermissionDenied(IdnodeError):
    """The caller may not do this."""

    handle_code = 401


class AuthenticationRequired(IdnodeError):
    """This operation needs a credential."""

    handle_code = 402


class AuthenticationFailed(IdnodeError):
    """The credential is not valid."""

    handle_code = 403


class TokenExpired(AuthenticationFailed):
    """The bearer token was valid and has expired."""


class TooLarge(IdnodeError):
    """The request exceeds a size limit."""

    handle_code = 2


class StoreError(IdnodeError):
    """The store failed."""

    handle_code = 2


class SyncRefused(IdnodeError):
    """The top-level node refuses this copy: its node prefix is homed to another node
    identity, or the copy is older than the mirror it would replace."""

    handle_code = 2


class ChainBroken(SyncRefused):
    """The change log does not hash to its signed checkpoints: an entry was altered,
    reordered or lost, or a checkpoint is not signed by the node's registered key."""

    handle_code = 2


class ProofUnavailable(IdnodeError):
    """No signed proof can be given for this record (its change was trimmed from the
    change log, or the store keeps no chain)."""

    handle_code = 2


class ProofNotReady(ProofUnavailable):
    """The change that wrote this record is not signed yet: the node signs its change
    log at most a second or so after each write; ask again."""

    handle_code = 3


class StoreOutOfSpace(StoreError):
    """The store's disk (or the process's file-size limit) is full: writes fail, reads work."""

    handle_code = 2


class Unavailable(IdnodeError):
    """A node needed for the answer could not be reached."""

    handle_code = 3


class ReadOnlyReplica(IdnodeError):
    """This node is a read replica: writes go to its primary."""

    handle_code = 301  # Handle's "server not responsible": not for writes

    def __init__(self, message: str, primary: str = "", primary_http: str = "") -> None:
        super().__init__(message)
        self.primary = primary  # the primary's gRPC HOST:PORT
        self.primary_http = primary_http  # base URL of its HTTP face, "" when unknown


class SequenceNotReached(Unavailable):
    """This node has not applied the change log up to the sequence the read asks for:
    ask again, or ask another node."""


def all_error_classes() -> list[type[IdnodeError]]:
    """Every domain error class, for the front ends' mapping tables and their tests."""
    found: list[type[IdnodeError]] = []
    pending: list[type[IdnodeError]] = [IdnodeError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
