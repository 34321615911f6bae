"""`make bench`: every figure of the performance table, each against a reference from the same run.

    python -m loadtest.bench [--scale 1000000] [--rounds 5] [--seconds 4] [--only grpc,dns,...]

Reference and subject rounds alternate (reference, subject, reference, ...);
each figure is the median of the rounds with their spread (min-max), and each
ratio is taken round by round, subject over the reference measured just before.
Servers and load generators are pinned to separate CPUs where there are two.
The table is Markdown on stdout; progress goes to stderr, one line at a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from collections.abc import Callable

from loadtest import dns_rows, grpc_bench, http_rows, machine, scale_bench, sync_bench, tls_bench
from loadtest import node as node_process
from loadtest.report import Row, say, table

SECTIONS = ("grpc", "tls", "http", "dns", "scale", "sync")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    problem = _check(args)
    if problem:
        print(f"loadtest.bench: {problem}", file=sys.stderr)
        return 2
    pinning = machine.plan()
    pinning.pin_clients()
    say(f"pinning: {pinning.describe()}")
    header = {
        **machine.description(),
        "command": _command_line(argv),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "pinning": pinning.describe(),
        "rounds": f"{args.rounds} per figure, {args.seconds:g} s each, "
        f"{pinning.server_workers()} node worker(s)",
    }
    if args.note:
        header["note"] = args.note
    measures: dict[str, Callable[[], list[Row]]] = {
        "grpc": lambda: grpc_bench.rows(
            grpc_bench.Settings(args.idnode, args.rounds, args.seconds, pinning)
        ),
        "tls": lambda: tls_bench.rows(args.idnode, args.rounds, args.seconds),
        "http": lambda: http_rows.rows(args.idnode, args.rounds, args.seconds, pinning),
        "dns": lambda: dns_rows.rows(args.idnode, args.rounds, args.seconds, pinning),
        "scale": lambda: scale_bench.rows(
            args.idnode, args.rounds, args.seconds, pinning, args.scale
        ),
        "sync": lambda: sync_bench.rows(
            args.idnode, args.rounds, args.seconds, pinning, args.sync_rate, args.sync_batch
        ),
    }
    rows: list[Row] = []
    for section in args.only.split(","):
        if section == "dns" and not dns_rows.available():
            missing = "skipped: dnsperf and nsd are needed (make system-deps installs them)"
            rows.append(Row("DNS rows", "", [], notes=[missing]))
            continue
        if section == "http" and not http_rows.available():
            missing = "skipped: wrk is needed (make system-deps installs it)"
            rows.append(Row("HTTP rows", "", [], notes=[missing]))
            continue
        say(f"== {section} ==")
        rows += measures[section]()
    print(table(rows, header))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"header": header, "rows": [row.as_dict() for row in rows]}, handle, indent=1)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--idnode", default=node_process.default_idnode(), help="the idnode command to benchmark"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (default 5)")
    parser.add_argument("--seconds", type=float, default=4.0, help="per round (default 4)")
    parser.add_argument(
        "--scale", type=int, default=1_000_000,
        help="identifiers compared with 10,000 in the scale rows (default 1,000,000)",
    )  # fmt: skip
    parser.add_argument("--sync-rate", type=float, default=1000.0, help="registrations/s")
    parser.add_argument("--sync-batch", type=int, default=10, help="records per BatchRegister")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"sections, comma-separated: {SECTIONS}"
    )
    parser.add_argument("--note", default="", help="a line for the header (the machine's state)")
    parser.add_argument("--json", metavar="FILE", help="also write every round to FILE")
    return parser


def _check(args: argparse.Namespace) -> str:
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        return f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}"
    if args.rounds < 1 or args.seconds <= 0:
        return "--rounds must be at least 1 and --seconds positive"
    if args.scale < 1 or args.sync_rate <= 0 or args.sync_batch < 1:
        return "--scale, --sync-rate and --sync-batch must be positive"
    return ""


def _command_line(argv: list[str] | None) -> str:
    """The command as run, less --note (the header shows the note on its own line)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if "--note" in words:
        del words[words.index("--note") : words.index("--note") + 2]
    words = [word for word in words if not word.startswith("--note=")]
    return shlex.join(["python", "-m", "loadtest.bench", *words])


if __name__ == "__main__":
    sys.exit(main())
