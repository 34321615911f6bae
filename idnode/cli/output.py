"""How subcommands speak: exit codes, one JSON document or readable text, values shown."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

from proto import handle_pb2, registry_pb2

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the text already says it or the
    option has none to show (a flag that is off, a value that is absent unless given)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], "", argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """The command line's parser: its subcommands are Parsers too, so all show defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    """Print `document` as JSON with --json, else `text`."""
    print(json.dumps(document, ensure_ascii=False) if args.json else text)


def fail(args: argparse.Namespace, document: dict[str, Any], text: str) -> int:
    """Report a failure: `document` as JSON on stdout with --json, else `text` on stderr."""
    if args.json:
        print(json.dumps(document, ensure_ascii=False))
    else:
        print(f"idnode: {text}", file=sys.stderr)
    return EXIT_FAILED


def emit_write(args: argparse.Namespace, written: registry_pb2.WriteResponse) -> int:
    """Show a write's outcome: operation, sequence and the record after it."""
    emit(
        args,
        {
            "identifier": written.identifier,
            "operation": written.operation,
            "sequence": written.sequence,
            "values": [value_json(v) for v in written.values],
        },
        f"{written.operation}: {written.identifier} ({len(written.values)} values)",
    )
    return EXIT_OK


def value_json(value: handle_pb2.HandleValue) -> dict[str, Any]:
    """A value as shown to people and scripts: data as text, or b64: when not UTF-8."""
    data = bytes(value.data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "b64:" + base64.b64encode(data).decode()
    return {
        "index": value.index,
        "type": value.type,
        "data": text,
        "ttl": value.ttl,
        "timestamp": value.timestamp,
        "public_read": not value.HasField("public_read") or value.public_read,
    }
