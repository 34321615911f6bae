"""Progress of long operations (import, backup, restore, verify) on stderr.

On a terminal: a tqdm bar with rate, ETA and human units, redrawn in place.
Elsewhere (a log, a pipe, CI): a plain line every LOG_INTERVAL_SECONDS, and
exactly one final line.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

LOG_INTERVAL_SECONDS = 10.0


class Progress:
    """`update(done)` or `advance(n)` as work is done, `finish()` once at the end.

    `total` may be 0 (unknown) and may be set later; `unit` "bytes" counts in KiB/MiB.
    """

    def __init__(
        self, label: str, total: int, unit: str = "", stream: TextIO | None = None
    ) -> None:
        self.label = label
        self.unit = unit
        self.done = 0
        self._total = total
        self._stream = stream or sys.stderr
        self._started = time.monotonic()
        self._logged = self._started
        self._finished = False
        self._bar: tqdm[Any] | None = None
        if self._stream.isatty():
            self._bar = tqdm(
                desc=label, total=total or None, file=self._stream, mininterval=0.25,
                unit="B" if unit == "bytes" else f" {unit}", unit_scale=True,
                unit_divisor=1024 if unit == "bytes" else 1000, dynamic_ncols=True, leave=True,
            )  # fmt: skip

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = value
        if self._bar is not None and value and self._bar.total != value:
            self._bar.reset(total=value)
            self._bar.update(self.done)

    def advance(self, amount: int = 1) -> None:
        self.update(self.done + amount)

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self.done)
        self.done = done
        now = time.monotonic()
        if self._bar is None and now - self._logged >= LOG_INTERVAL_SECONDS:
            self._logged = now
            self._line(now, final=False)

    def finish(self) -> None:
        """Close the bar, or write the one final line; a second call does nothing."""
        if self._finished:
            return
        self._finished = True
        if self._bar is not None:
            self._bar.close()
        else:
            self._line(time.monotonic(), final=True)

    def _line(self, now: float, final: bool) -> None:
        elapsed = max(now - self._started, 1e-9)
        done = self._human(self.done)
        of = f"/{self._human(self._total)}" if self._total else ""
        share = f" ({100 * self.done / self._total:.0f}%)" if self._total and not final else ""
        unit = "" if self.unit == "bytes" else f" {self.unit}"
        rate = f"{self._human(self.done / elapsed)}{unit}/s"
        verb = "done" if final else "at"
        line = f"{self.label}: {verb} {done}{of}{unit}{share}, {rate}"
        self._stream.write(line + (f", {elapsed:.1f} s" if final else "") + "\n")
        self._stream.flush()

    def _human(self, amount: float) -> str:
        if self.unit == "bytes":
            return str(tqdm.format_sizeof(amount, "B", 1024))
        return str(tqdm.format_sizeof(amount)) if amount >= 1000 else f"{amount:.0f}"
