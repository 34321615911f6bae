"""The `idnode` command: serve a node, and the subcommands that talk to one or to its data."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from idnode import __version__
from idnode.cli import (
    accounts,
    devcert,
    enterprises,
    local,
    populate,
    records,
    replica,
    serve,
    status,
    toplevel,
    values,
)
from idnode.cli.output import EXIT_USAGE, Parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`idnode status | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="idnode",
        description="A secondary node of an industrial-internet identifier resolution system.",
    )
    parser.add_argument("--version", action="version", version=f"idnode {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    serve.add_parsers(commands)
    enterprises.add_parsers(commands)
    records.add_parsers(commands)
    values.add_parsers(commands)
    local.add_parsers(commands)
    populate.add_parsers(commands)
    toplevel.add_parsers(commands)
    status.add_parsers(commands)
    accounts.add_parsers(commands)
    devcert.add_parsers(commands)
    replica.add_parsers(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
