"""What every phase of a run shares: the options, the database, the service, the child processes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.console import log
from bench.database import BenchDatabase
from bench.options import Options
from bench.processes import Children
from bench.service import Service


@dataclass
class Bench:
    options: Options
    workdir: Path
    database: BenchDatabase
    children: Children = field(default_factory=Children)
    service: Service | None = None
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    notes: list[str] = field(default_factory=list)

    def running_service(self) -> Service:
        assert self.service is not None, "a load phase runs against the started service"
        return self.service

    def checkpoint(self) -> None:
        """Called by each load run before it starts (bench/database.py says why)."""
        note = self.database.checkpoint()
        if note is not None and note not in self.notes:
            log(note)
            self.notes.append(note)
