"""The options of a run (`bench/run --help`); stdlib only, so the platform check can come first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.workload import IMPORT_ROWS


@dataclass(frozen=True)
class Options:
    workers: int = 1
    duration: float = 10.0
    soak: float = 0.0
    count: int = 100
    warmup: int = 200
    import_rows: int = IMPORT_ROWS
    leads: tuple[str, ...] = ()  # how to run `leads` (default: this python -m cli)
    json: Path | None = None
    check: bool = False
    access_log: bool = True
    profile: Path | None = None
    profile_native: bool = False
    py_spy: str | None = None
