"""`idnode value add|modify|remove`: change single values of an identifier over gRPC."""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc

from idnode.cli import client
from idnode.cli.client import add_parser
from idnode.cli.output import emit_write
from proto import handle_pb2, registry_pb2, resolver_pb2


def add_parsers(commands: Any) -> None:
    value = commands.add_parser(
        "value", help="add, modify or remove single values of an identifier",
        description="Add, modify or remove single values of an identifier (the owner of its "
        "prefix, or the administrator).",
    )  # fmt: skip
    value.set_defaults(run=lambda args: value.print_help() or 2)
    value_commands = value.add_subparsers(title="commands", metavar="COMMAND")
    add = add_parser(
        value_commands, "add",
        "add values; those without INDEX take the next free indexes", add_values,
    )  # fmt: skip
    add.add_argument("identifier")
    add_value_flags(add)
    modify = add_parser(
        value_commands, "modify", "replace values by index (INDEX:TYPE=DATA)", modify_values
    )
    modify.add_argument("identifier")
    add_value_flags(modify)
    remove = add_parser(value_commands, "remove", "remove values by index", remove_values)
    remove.add_argument("identifier")
    remove.add_argument(
        "--index", action="append", type=int, required=True, metavar="INDEX",
        help="index of a value to remove, repeatable (default: none; at least one is needed)",
    )  # fmt: skip


def add_value_flags(parser: argparse.ArgumentParser) -> None:
    """--value, --file, --ttl, --private: the values a command sends."""
    parser.add_argument(
        "--value", action="append", default=[], metavar="[INDEX:]TYPE=DATA",
        help="a value, repeatable (default: none; give --value or --file)",
    )  # fmt: skip
    parser.add_argument(
        "--file", metavar="JSON",
        help='values as {"values": [{"index", "type", "data", "ttl", "public_read"}]} '
        "(default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--ttl", type=int, help="ttl in seconds for --value values (default: 86400)"
    )
    parser.add_argument(
        "--private", action="append", type=int, default=[], metavar="INDEX",
        help="make the value at INDEX readable only by its owner and the administrator "
        "(default: every value public)",
    )  # fmt: skip


def from_args(args: argparse.Namespace, first_index: int = 1) -> list[handle_pb2.HandleValue]:
    """The values of --file then --value; values without an index are numbered from
    `first_index` on. Raises ClientError naming what is wrong."""
    found = _from_file(args.file, first_index) if args.file else []
    position = max([first_index - 1, *(v.index for v in found)]) + 1
    for text in args.value:
        head, sep, data = text.partition("=")
        if not sep:
            raise client.ClientError(f"--value {text!r} is not [INDEX:]TYPE=DATA")
        index_text, colon, kind = head.rpartition(":")
        if colon and not index_text.isdigit():
            raise client.ClientError(f"--value {text!r}: index {index_text!r} is not a number")
        index = int(index_text) if colon else position
        position = max(position, index) + 1
        value = handle_pb2.HandleValue(index=index, type=kind, data=data.encode())
        if args.ttl is not None:
            value.ttl = args.ttl
        found.append(value)
    for value in found:
        if value.index in args.private:
            value.public_read = False
    if not found:
        raise client.ClientError("give at least one --value TYPE=DATA or --file")
    return found


def _from_file(path: str, first_index: int) -> list[handle_pb2.HandleValue]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as error:
        raise client.ClientError(f"--file {path}: {error}") from None
    items = document.get("values") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise client.ClientError(f'--file {path}: expected {{"values": [...]}}')
    found: list[handle_pb2.HandleValue] = []
    for position, item in enumerate(items, start=first_index):
        where = f"--file {path}, value {position - first_index + 1}"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise client.ClientError(f"{where}: expected an object with a string 'type'")
        try:
            value = handle_pb2.HandleValue(
                index=int(item.get("index", position)),
                type=item["type"],
                data=str(item.get("data", "")).encode(),
            )
            if "ttl" in item:
                value.ttl = int(item["ttl"])
        except (TypeError, ValueError) as error:
            raise client.ClientError(f"{where}: {error}") from None
        if item.get("public_read") is False:
            value.public_read = False
        found.append(value)
    return found


def add_values(args: argparse.Namespace, opened: grpc.Channel) -> int:
    current = client.resolver_stub(opened).Resolve(
        resolver_pb2.ResolveRequest(identifier=args.identifier),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    taken = [v.index for v in current.values]
    record = handle_pb2.Record(identifier=args.identifier)
    record.values.extend(from_args(args, first_index=max(taken, default=0) + 1))
    return _written(args, client.registry_stub(opened).AddValues, record)


def modify_values(args: argparse.Namespace, opened: grpc.Channel) -> int:
    if any(":" not in text.partition("=")[0] for text in args.value):
        raise client.ClientError("value modify needs INDEX:TYPE=DATA for every --value")
    record = handle_pb2.Record(identifier=args.identifier)
    record.values.extend(from_args(args))
    return _written(args, client.registry_stub(opened).ModifyValues, record)


def remove_values(args: argparse.Namespace, opened: grpc.Channel) -> int:
    request = registry_pb2.RemoveValuesRequest(identifier=args.identifier, indexes=args.index)
    return _written(args, client.registry_stub(opened).RemoveValues, request)


def _written(args: argparse.Namespace, method: Any, request: Any) -> int:
    written: registry_pb2.WriteResponse = method(
        request, metadata=client.metadata(args.token), timeout=args.timeout
    )
    return emit_write(args, written)
