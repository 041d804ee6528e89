"""The facts a report needs to be compared with another: the machine, the server, the versions,
the commit, and how busy the machine already was."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy
import uvicorn

from bench import procfs
from bench.console import log
from bench.database import BenchDatabase
from bench.processes import ROOT
from bench.tools import find_pgbench, first_line

# Above this, other work on the machine skews every number.
BUSY_WARNING_CORES = 0.25


def facts(database: BenchDatabase) -> dict[str, Any]:
    cpu = "unknown"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1) if found else cpu
    except OSError:
        pass
    git = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked=no"])
    return {
        "nproc": procfs.nproc(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": database.server_facts(),
        "uvicorn": uvicorn.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "asyncpg": asyncpg.__version__,
        "wrk": first_line(["wrk", "--version"]).split("Copyright")[0].strip(),
        "pgbench": first_line([find_pgbench(), "--version"]),
        "git": git + (" (modified files)" if dirty not in ("", "unavailable") else ""),
        "env": {k: v for k, v in os.environ.items() if k.startswith("LEADS_")},
    }


def background_load(seconds: float = 2.0) -> float:
    """Busy cores of the machine before the run loads it."""
    before = procfs.machine_cpu()
    time.sleep(seconds)
    cores = round(procfs.busy_cores(before, procfs.machine_cpu()), 2)
    if cores > BUSY_WARNING_CORES:
        log(f"warning: the machine is already busy ({cores:.2f} cores) before the run")
    return cores
