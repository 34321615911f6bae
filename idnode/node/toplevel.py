"""`idnode toplevel`: composition of the reference national top-level node."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from idnode import __version__, logs
from registry.errors import IdnodeError


@dataclass(frozen=True)
class TopLevelSettings:
    """What `idnode toplevel` runs with (from its command line)."""

    data_dir: str
    grpc_listen: Sequence[str]
    probe_interval_seconds: float = 2.0
    probe_failures: int = 2
    log_level: str = "info"
    log_format: str = "text"


def main(settings: TopLevelSettings) -> int:
    """Run the top-level node until SIGTERM or SIGINT; prints one JSON ready line."""
    from sync.toplevel.server import TopLevelNode

    logs.setup(settings.log_level, settings.log_format)
    try:
        node = TopLevelNode(
            settings.data_dir,
            os.environ.get("IDNODE_ADMIN_TOKEN") or None,
            probe_interval_seconds=settings.probe_interval_seconds,
            probe_failures=settings.probe_failures,
        )
    except IdnodeError as error:
        raise SystemExit(f"idnode: cannot use data dir {settings.data_dir}: {error}") from None
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
        bound = node.start(list(settings.grpc_listen))
    except OSError as error:
        node.stop(0)
        raise SystemExit(f"idnode: {error}") from None
    ready = {"event": "ready", "role": "toplevel", "version": __version__, "pid": os.getpid()}
    ready["grpc"] = bound
    print(json.dumps(ready), flush=True)
    stopping.wait()
    node.stop()
    return 0
