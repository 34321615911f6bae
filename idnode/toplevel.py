"""`idnode toplevel`: composition of the reference national top-level node."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from idnode import __version__, logs
from idnode.upstream import DEFAULT_TOPLEVEL
from registry.errors import IdnodeError


def main(args: argparse.Namespace) -> int:
    """Run the top-level node until SIGTERM or SIGINT; prints one JSON ready line."""
    from sync.toplevel.server import TopLevelNode

    logs.setup(args.log_level, args.log_format)
    try:
        node = TopLevelNode(
            args.data_dir,
            os.environ.get("IDNODE_ADMIN_TOKEN") or None,
            probe_interval_seconds=args.probe_interval,
            probe_failures=args.probe_failures,
        )
    except IdnodeError as error:
        raise SystemExit(f"idnode: cannot use data dir {args.data_dir}: {error}") from None
    if node.created_admin_token:
        print(
            "administrator token (shown once; keep it, it is stored only hashed):\n"
            f"  {node.created_admin_token}",
            file=sys.stderr,
            flush=True,
        )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        bound = node.start(args.grpc_listen or [DEFAULT_TOPLEVEL])
    except OSError as error:
        node.stop(0)
        raise SystemExit(f"idnode: {error}") from None
    ready = {"event": "ready", "role": "toplevel", "version": __version__, "pid": os.getpid()}
    ready["grpc"] = bound
    print(json.dumps(ready), flush=True)
    stopping.wait()
    node.stop()
    return 0
