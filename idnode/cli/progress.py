"""A progress line on stderr for long operations (import, backup, benchmarks)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws `label: done/total (pct) rate/s` at most every `interval_seconds`."""

    def __init__(
        self, label: str, total: int, unit: str = "", stream: TextIO | None = None,
        interval_seconds: float = 0.25,
    ) -> None:  # fmt: skip
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._interval = interval_seconds if self._interactive else 2.0
        self._started = time.monotonic()
        self._drawn = 0.0

    def advance(self, amount: int = 1) -> None:
        self.update(self.done + amount)

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._drawn >= self._interval:
            self._drawn = now
            self._draw(final=False)

    def finish(self) -> None:
        self._draw(final=True)

    def _draw(self, final: bool) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        total = f"/{self.total}" if self.total else ""
        line = f"{self.label}: {self.done}{total} {self.unit}{share} {rate:,.0f} {self.unit}/s"
        if self._interactive:
            self._stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
