"""Pinned client certificates: which node a mutual-TLS caller may speak for."""

from __future__ import annotations

from collections.abc import Iterable

from registry.crypto.certificates import CertificateError, parse_fingerprint
from registry.errors import AuthenticationRequired, InvalidRequest, PermissionDenied

MAX_PINS = 8


def fingerprints(pins: Iterable[str]) -> list[str]:
    """Canonical SHA-256 fingerprints, without repeats. Raises InvalidRequest for a
    malformed one or too many."""
    found = list(pins)
    if len(found) > MAX_PINS:
        raise InvalidRequest(f"at most {MAX_PINS} pinned certificates per node")
    try:
        return list(dict.fromkeys(parse_fingerprint(pin) for pin in found))
    except CertificateError as error:
        raise InvalidRequest(str(error)) from None


def check(node_prefix: str, pins: list[str], presented: str, token_sent: bool) -> None:
    """A node call is allowed by the pins: none set (the token decides; one is needed), or
    the presented certificate's fingerprint is pinned (with or without a token).

    Raises AuthenticationRequired for a call with no credential at all, or without the
    certificate a pinned node must present; PermissionDenied for another certificate.
    """
    if not pins:
        if not token_sent:
            raise AuthenticationRequired("this call needs a bearer token")
        return
    if not presented:
        raise AuthenticationRequired(
            f"node {node_prefix} must present its pinned client certificate (mutual TLS)"
        )
    if presented not in pins:
        raise PermissionDenied(
            f"the client certificate presented (SHA-256 {presented[:16]}...) is not pinned "
            f"for node {node_prefix}; an operator pins a rotated certificate with "
            f"`idnode toplevel node pin {node_prefix} --client-cert FILE`"
        )
