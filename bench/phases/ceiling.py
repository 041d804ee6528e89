"""The ceilings: pgbench running one new lead per transaction with CLIENTS clients on the same
database, in the service's transaction shape and as the one statement (bench/new_lead_sql.py)."""

from __future__ import annotations

import re
from typing import Any

from bench import procfs, workload
from bench.console import BenchError, log
from bench.context import Bench
from bench.meters import LoadMeter
from bench.new_lead_sql import PgbenchScript, pgbench_scripts
from bench.tools import find_pgbench


def scripts(bench: Bench) -> list[PgbenchScript]:
    return pgbench_scripts(bench.database.source_binding())


def run(bench: Bench, shape: PgbenchScript, duration: float) -> dict[str, Any]:
    path = bench.workdir / f"{shape.name}.sql"
    path.write_text(shape.script)
    argv = [find_pgbench(), "-n", "-M", "prepared", "-c", str(workload.CLIENTS)]
    argv += ["-j", str(procfs.nproc()), "-T", f"{round(duration)}", "-f", str(path)]
    for name, value in shape.variables.items():
        argv += ["-D", f"{name}={value}"]
    argv.append(bench.database.url)
    log(f"pgbench: {workload.CLIENTS} clients, {round(duration)} s, {shape.title}")
    bench.checkpoint()
    before = bench.database.lead_count()
    with LoadMeter(bench.database.url, "pgbench") as meter:
        out = bench.children.run(argv, timeout=duration + 120)
    tps = re.search(r"^tps = ([\d.]+)", out, re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", out, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", out, re.MULTILINE)
    if tps is None:
        raise BenchError(f"pgbench printed no tps:\n{out}")
    rows = bench.database.lead_count() - before
    return {
        "shape": shape.title,
        "tps": float(tps.group(1)),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
        "rows_inserted": rows,
        **meter.result(duration, rows),
        "script": shape.script,
        "output": out,
    }
