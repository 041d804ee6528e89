"""The last stdout line of `leads import`, parsed:
`imported N rows: C created, R replayed, X rejected in S s (T rows/s)`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COUNT = r"\d[\d,]*"  # a thousands separator is tolerated
_REAL = rf"{_COUNT}(?:\.\d+)?"
_SUMMARY = re.compile(
    rf"imported (?P<rows>{_COUNT}) rows: (?P<created>{_COUNT}) created, "
    rf"(?P<replayed>{_COUNT}) replayed, (?P<rejected>{_COUNT}) rejected "
    rf"in (?P<seconds>{_REAL}) s \((?P<rows_per_s>{_REAL}) rows/s\)"
)


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    created: int
    replayed: int
    rejected: int
    seconds: float
    rows_per_s: float


def parse_summary(stdout: str) -> ImportSummary | None:
    """The summary from the last non-blank line of `stdout`, None if that line is not one."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    found = _SUMMARY.fullmatch(lines[-1]) if lines else None
    if found is None:
        return None
    numbers = {name: float(text.replace(",", "")) for name, text in found.groupdict().items()}
    seconds, rate = numbers.pop("seconds"), numbers.pop("rows_per_s")
    counts = {name: int(value) for name, value in numbers.items()}
    return ImportSummary(**counts, seconds=seconds, rows_per_s=rate)
