"""Wiring of the hierarchy into `idnode serve`: upstream sync, referrals, toplevel commands."""

from __future__ import annotations

from typing import Any

from idnode.config import Config
from registry.store import Store


def start(config: Config, store: Store) -> Any | None:
    """Start the upstream sync in the master when `config.upstream` is set (has stop())."""
    return None


def referrer(config: Config) -> Any | None:
    """The Referrer workers use for prefixes outside the node prefix (asks the upstream)."""
    return None


def add_parsers(commands: Any) -> None:
    """Add `idnode toplevel …` and `idnode status` to the command line."""
    del commands
