"""Bearer-token authentication for gRPC: the token and the source address of a call."""

from __future__ import annotations

import grpc

from registry.accounts import Account
from registry.errors import AuthenticationFailed
from resolver import auth

MAX_TOKEN_CHARS = 1024  # generated tokens are 43; anything this long is not a token


class Authenticator(auth.Authenticator):
    """Who is calling: the account behind `authorization: Bearer <token>`, or None."""

    def caller(self, context: grpc.ServicerContext) -> Account | None:
        """The calling account, None when no credential was sent.

        Raises AuthenticationFailed for a malformed or unknown token, or when the
        call's source failed too often to be served now.
        """
        try:
            token = bearer_token(context)
        except AuthenticationFailed as error:
            raise self.failed(source_of(context.peer()), "malformed", error) from None
        if token is None:
            return None
        return self.account(token, source_of(context.peer()))


def bearer_token(context: grpc.ServicerContext) -> str | None:
    """The token of `authorization: Bearer <token>`, None when absent.

    Raises AuthenticationFailed when the metadata is not that shape."""
    for key, value in context.invocation_metadata():
        if key == "authorization":
            text = value if isinstance(value, str) else value.decode(errors="replace")
            scheme, _, token = text.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
                raise AuthenticationFailed("authorization metadata must be 'Bearer <token>'")
            return token
    return None


def source_of(peer: str) -> str:
    """The address a call came from, without its port (`ipv4:1.2.3.4:5` -> `1.2.3.4`);
    an IPv6 address stands for its /64, which one holder usually has whole."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        address = rest.rpartition(":")[0].strip("[]") or rest
        groups = address.split("::")[0].split(":")[:4]
        return ":".join(groups) + "::/64" if len(groups) == 4 else address
    return peer
