"""The audit trail: one log line per administrative action, structured, never a secret."""

from __future__ import annotations

import logging

log = logging.getLogger("idnode.audit")
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


def record(action: str, actor: str, **fields: object) -> None:
    """Log that `actor` (an account name) did `action` (`token.rotate`, `node.pin`, ...).

    `fields` become structured fields of the line (JSON logs keep them as keys); pass
    names, ids, fingerprints and times, never a token or a key.
    """
    extra: dict[str, object] = {"audit": action, "actor": actor}
    for key, value in fields.items():
        extra[f"{key}_" if key in _RESERVED else key] = value
    log.info("audit: %s by %s", action, actor, extra=extra)
