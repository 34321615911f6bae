"""The load mix the Locust users follow, and the names they ask for (no Locust import here:
importing Locust monkey-patches the process)."""

from __future__ import annotations

import base64
import random
import re
import secrets

DEMO_IDENTIFIERS = ["88.118.8/JXDY2106023", "88.118.8/abc-1", "88.118.8/pump/2024/0001"]
EXISTING_SHARE = 0.8  # of resolutions: four in five ask for an identifier that exists
REGISTER_WEIGHT = 5  # of 100 tasks of a user that may write
RESOLVE_WEIGHT = 95

_PLAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
B32 = "b32-"


class Identifiers:
    """Existing identifiers from a file, and names made up to be missing."""

    def __init__(self, path: str) -> None:
        if path:
            with open(path, encoding="utf-8") as handle:
                self.existing = [line.strip() for line in handle if line.strip()]
        else:
            self.existing = list(DEMO_IDENTIFIERS)
        if not self.existing:
            raise SystemExit(f"no identifiers in {path}")
        self.prefixes = sorted({identifier.partition("/")[0] for identifier in self.existing})

    def pick(self) -> tuple[str, bool]:
        """An identifier to resolve, and whether it exists (four in five do)."""
        if random.random() < EXISTING_SHARE:
            return random.choice(self.existing), True
        return f"{random.choice(self.prefixes)}/absent-{secrets.token_hex(6)}", False


def dns_name(identifier: str, zone: str) -> str:
    """The identifier's name in the zone: the suffix as one plain label when it is one,
    else `b32-` and its base32hex in labels of 63, then the prefix's segments reversed."""
    prefix, _, suffix = identifier.partition("/")
    if _PLAIN.match(suffix) and not suffix.startswith((B32, "xn--")):
        labels = [suffix]
    else:
        encoded = B32 + base64.b32hexencode(suffix.encode()).decode().rstrip("=").lower()
        labels = [encoded[i : i + 63] for i in range(0, len(encoded), 63)]
    zone = zone if zone.endswith(".") else zone + "."
    return ".".join([*labels, *reversed(prefix.lower().split("."))]) + "." + zone.lower()
