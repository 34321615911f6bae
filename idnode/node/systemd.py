"""The systemd notify protocol (sd_notify): READY, RELOADING, STOPPING, STATUS lines."""

from __future__ import annotations

import os
import socket
import time


def notify(*lines: str) -> bool:
    """Send `lines` to the service manager when it asked for them (NOTIFY_SOCKET).

    Returns False when not run by systemd with Type=notify; a failure to send is
    not fatal (the manager then times the start out, which says enough).
    """
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError:
        return False
    return True


def ready(status: str) -> bool:
    return notify("READY=1", f"STATUS={status}")


def reloading() -> bool:
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def stopping() -> bool:
    return notify("STOPPING=1", "STATUS=draining")


def under_systemd() -> bool:
    """True when a service manager started this process (it sets INVOCATION_ID)."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET"))
