"""Rounds, medians and spreads, and the one table `make bench` prints."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CLIENT_BOUND_SHARE = 0.9  # a load generator this busy may be what limits the figure


@dataclass(frozen=True)
class Sample:
    """One round of one measurement."""

    value: float
    server_cpu_us_per_op: float | None = None
    client_cpu_share: float | None = None  # of the client CPUs, 0..1


@dataclass
class Row:
    """One figure: the subject's rounds against the reference's, paired round by round."""

    figure: str
    unit: str  # "/s", "ms", "MiB", "B"
    subject: list[Sample]
    reference: list[Sample] = field(default_factory=list)
    reference_name: str = ""
    target: str = ""
    notes: list[str] = field(default_factory=list)

    def ratios(self) -> list[float]:
        """Subject over reference, round by round (each pair measured back to back)."""
        return [
            s.value / r.value for s, r in zip(self.subject, self.reference, strict=False) if r.value
        ]

    def cpu_ratios(self) -> list[float]:
        """Reference CPU per op over the subject's, round by round: the ratio of rates were the
        server's CPU the only limit (it is not when the load generator saturates)."""
        if self.unit != "/s":
            return []
        return [
            r.server_cpu_us_per_op / s.server_cpu_us_per_op
            for s, r in zip(self.subject, self.reference, strict=False)
            if r.server_cpu_us_per_op and s.server_cpu_us_per_op
        ]

    def client_bound(self) -> bool:
        shares = [
            s.client_cpu_share
            for s in [*self.subject, *self.reference]
            if s.client_cpu_share is not None
        ]
        return bool(shares) and statistics.median(shares) >= CLIENT_BOUND_SHARE

    def as_dict(self) -> dict[str, Any]:
        def figures(samples: Sequence[Sample]) -> dict[str, Any]:
            values = [s.value for s in samples]
            cpu = [s.server_cpu_us_per_op for s in samples if s.server_cpu_us_per_op is not None]
            share = [s.client_cpu_share for s in samples if s.client_cpu_share is not None]
            return {
                "values": values,
                "median": statistics.median(values) if values else None,
                "server_cpu_us_per_op": statistics.median(cpu) if cpu else None,
                "client_cpu_share": statistics.median(share) if share else None,
            }

        ratios = self.ratios()
        return {
            "figure": self.figure,
            "unit": self.unit,
            "subject": figures(self.subject),
            "reference": figures(self.reference) | {"name": self.reference_name},
            "ratios": ratios,
            "ratio": statistics.median(ratios) if ratios else None,
            "cpu_ratios": self.cpu_ratios(),
            "target": self.target,
            "notes": self.notes,
        }


def interleaved(
    label: str,
    rounds: int,
    reference: Callable[[], Sample],
    subject: Callable[[], Sample],
    unit: str = "/s",
) -> tuple[list[Sample], list[Sample]]:
    """Run reference, subject, reference, subject, ... `rounds` times each."""
    references: list[Sample] = []
    subjects: list[Sample] = []
    for number in range(1, rounds + 1):
        references.append(reference())
        subjects.append(subject())
        say(
            f"{label}: round {number}/{rounds}: reference {number_text(references[-1].value)}"
            f"{unit}, subject {number_text(subjects[-1].value)}{unit}"
        )
    return references, subjects


def repeated(label: str, rounds: int, measure: Callable[[], Sample], unit: str) -> list[Sample]:
    samples = []
    for number in range(1, rounds + 1):
        samples.append(measure())
        say(f"{label}: round {number}/{rounds}: {number_text(samples[-1].value)}{unit}")
    return samples


def say(text: str) -> None:
    """Progress for a person: one plain line on stderr."""
    print(text, file=sys.stderr, flush=True)


def number_text(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread(values: Sequence[float], unit: str = "") -> str:
    """ "median (min–max)" of `values`; a single value alone."""
    if not values:
        return "—"
    median = f"{number_text(statistics.median(values))}{unit}"
    if len(values) == 1:
        return median
    return f"{median} ({number_text(min(values))}–{number_text(max(values))})"


def _ratio_text(ratios: Sequence[float], bold: bool = True) -> str:
    if not ratios:
        return "—"
    median = f"{statistics.median(ratios):.2f}×"
    median = f"**{median}**" if bold else median
    if len(ratios) == 1:
        return median
    return f"{median} ({min(ratios):.2f}–{max(ratios):.2f})"


def _cpu_text(row: Row) -> str:
    parts = []
    for samples in (row.subject, row.reference):
        cpu = [s.server_cpu_us_per_op for s in samples if s.server_cpu_us_per_op is not None]
        if cpu:
            parts.append(number_text(statistics.median(cpu)))
    ratios = row.cpu_ratios()
    text = " / ".join(parts) if parts else "—"
    return f"{text} → {_ratio_text(ratios, bold=False)}" if ratios else text


def table(rows: Sequence[Row], header: dict[str, str]) -> str:
    """The Markdown table (header lines, the table, then the notes)."""
    lines = [f"- **{key}**: {value}" for key, value in header.items()]
    lines += [
        "",
        "| figure | subject: median (min–max) | reference: median (min–max) "
        "| ratio: median (min–max) | target "
        "| server CPU µs/op: subject / reference → ratio by CPU |",
        "|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for row in rows:
        reference = (
            f"{row.reference_name}: {spread([s.value for s in row.reference], row.unit)}"
            if row.reference
            else "—"
        )
        marks = ""
        row_notes = list(row.notes)
        if row.client_bound():
            row_notes.append(
                "the load generator used ≥ 90 % of its CPUs: the client may limit this figure"
            )
        for note in row_notes:
            notes.append(note)
            marks += f" [{len(notes)}]"
        lines.append(
            f"| {row.figure}{marks} | {spread([s.value for s in row.subject], row.unit)} "
            f"| {reference} | {_ratio_text(row.ratios())} | {row.target or '—'} "
            f"| {_cpu_text(row)} |"
        )
    lines.append("")
    lines += [f"- [{number}] {note}" for number, note in enumerate(notes, start=1)]
    lines += ["", LEGEND]
    return "\n".join(lines)


LEGEND = (
    "Ratios are subject over reference, round by round. Server CPU: user + system time of "
    "the server's processes during each round (from /proc), per operation; the ratio by CPU "
    "is the reference's µs/op over the subject's, the ratio the rates would show were the "
    "server's CPU the only limit."
)
