"""`idnode account list`, `idnode token rotate|revoke`: credentials with a life, over gRPC."""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import grpc

from idnode.cli import client
from idnode.cli.client import add_parser
from idnode.cli.output import EXIT_USAGE, emit
from proto import handle_pb2, registry_pb2

_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> int:
    """Seconds from `90d`, `24h`, `30m`, `45s`, `2w` or plain seconds (argparse type)."""
    found = _DURATION.fullmatch(text.strip().lower())
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 24h, 90d or 3600")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def add_parsers(commands: Any) -> None:
    account = commands.add_parser(
        "account", help="accounts and their credentials", description="Accounts."
    )
    account.set_defaults(run=lambda args: account.print_help() or EXIT_USAGE)
    listing = add_parser(
        account.add_subparsers(title="commands", metavar="COMMAND"), "list",
        "accounts with their prefixes, tokens (ids, never secrets), created and last used "
        "(recorded to the minute) (administrator only)", account_list,
    )  # fmt: skip
    listing.add_argument("--page-size", type=int, default=100, help="accounts per page")
    listing.add_argument(
        "--page-token", default="", help="where to continue (default: the first page)"
    )
    listing.add_argument("--all", action="store_true", help="fetch every page")

    token = commands.add_parser(
        "token", help="rotate or revoke tokens", description="Rotate or revoke tokens."
    )
    token.set_defaults(run=lambda args: token.print_help() or EXIT_USAGE)
    token_commands = token.add_subparsers(title="commands", metavar="COMMAND")
    rotate = add_parser(
        token_commands, "rotate",
        "issue a new token; the account's other tokens keep working for the grace period "
        "(an account rotates its own; the administrator any, with --account)", token_rotate,
    )  # fmt: skip
    rotate.add_argument("--account", default="", help="whose token (default: the caller's)")
    rotate.add_argument(
        "--grace", type=duration, default=86400, metavar="DURATION",
        help="how long the old tokens stay valid: 24h, 7d, 0 ends them now (default 24h)",
    )  # fmt: skip
    rotate.add_argument(
        "--expires", type=duration, default=0, metavar="DURATION",
        help="the new token expires after this (90d, ...; default: never)",
    )  # fmt: skip
    revoke = add_parser(
        token_commands, "revoke",
        "end tokens now: one (--id, from `idnode account list`) or all of an account's "
        "(the administrator's last token cannot be revoked: rotate it)", token_revoke,
    )  # fmt: skip
    revoke.add_argument("--account", default="", help="whose token (default: the caller's)")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", default="", help="the token's id (default: none; or --all)")
    which.add_argument("--all", action="store_true", help="every token of the account")


def account_list(args: argparse.Namespace, opened: grpc.Channel) -> int:
    stub = client.registry_stub(opened)
    token = args.page_token
    found: list[registry_pb2.AccountSummary] = []
    while True:
        page = stub.ListAccounts(
            registry_pb2.ListAccountsRequest(page_size=args.page_size, page_token=token),
            metadata=client.metadata(args.token),
            timeout=args.timeout,
        )
        found.extend(page.accounts)
        token = page.next_page_token
        if not args.all or not token:
            break
    now = int(time.time())
    lines = []
    for summary in found:
        account = summary.account
        role = handle_pb2.Account.Role.Name(account.role).lower()
        lines.append(
            f"{account.name:<20} {role:<10} created {_when(account.created)}  "
            f"last used {_when(summary.last_used)}  prefixes {' '.join(summary.prefixes) or '-'}"
        )
        lines += [f"{'':<20} token {_credential_line(c, now)}" for c in account.credentials]
    if token:
        lines.append(f"(more: --page-token {token})")
    emit(
        args,
        {"accounts": [_summary_json(s) for s in found], "next_page_token": token},
        "\n".join(lines) or "no accounts",
    )
    return 0


def token_rotate(args: argparse.Namespace, opened: grpc.Channel) -> int:
    reply = client.registry_stub(opened).RotateToken(
        registry_pb2.RotateTokenRequest(
            account=args.account, grace_seconds=args.grace, expires_in_seconds=args.expires
        ),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    emit(
        args,
        {
            "account": reply.account,
            "token": reply.token,
            "credential": _credential_json(reply.credential),
            "old_valid_until": reply.old_valid_until,
        },
        f"account {reply.account}: new token (shown once; stored only hashed): {reply.token}\n"
        f"token id {reply.credential.id}, expires {_when(reply.credential.expires, 'never')}\n"
        f"the account's earlier tokens stop working {_when(reply.old_valid_until)}",
    )
    return 0


def token_revoke(args: argparse.Namespace, opened: grpc.Channel) -> int:
    reply = client.registry_stub(opened).RevokeToken(
        registry_pb2.RevokeTokenRequest(account=args.account, credential_id=args.id),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    emit(
        args,
        {"account": reply.account, "revoked": list(reply.revoked)},
        f"account {reply.account}: revoked {', '.join(reply.revoked) or 'nothing'}",
    )
    return 0


def _when(seconds: int, never: str = "never") -> str:
    if not seconds:
        return never
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _credential_line(credential: handle_pb2.Credential, now: int) -> str:
    if credential.revoked:
        state = f"revoked {_when(credential.revoked)}"
    elif credential.expires and credential.expires <= now:
        state = f"expired {_when(credential.expires)}"
    elif credential.expires:
        state = f"valid until {_when(credential.expires)}"
    else:
        state = "valid"
    return (
        f"{credential.id} ({credential.scheme or 'sha256'}) {state}, created "
        f"{_when(credential.created)}, last used {_when(credential.last_used)}"
    )


def _credential_json(credential: handle_pb2.Credential) -> dict[str, Any]:
    return {
        "id": credential.id,
        "scheme": credential.scheme or "sha256",
        "created": credential.created,
        "expires": credential.expires,
        "revoked": credential.revoked,
        "last_used": credential.last_used,
        "note": credential.note,
    }


def _summary_json(summary: registry_pb2.AccountSummary) -> dict[str, Any]:
    account = summary.account
    return {
        "name": account.name,
        "role": handle_pb2.Account.Role.Name(account.role).lower(),
        "created": account.created,
        "last_used": summary.last_used,
        "prefixes": list(summary.prefixes),
        "credentials": [_credential_json(c) for c in account.credentials],
    }
