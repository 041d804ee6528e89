"""The import phase: new leads from a CSV through `leads import` into the run's database, reported
as rows/s next to the HTTP sustained requests/s of the same run, with the import's RSS over time
(memory must stay flat however many rows it streams)."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Any

from bench import procfs, workload
from bench.console import log
from bench.context import Bench
from bench.import_summary import parse_summary
from bench.meters import LoadMeter

RSS_INTERVAL_S = 0.2


def leads_command(bench: Bench) -> list[str]:
    return list(bench.options.leads) or [sys.executable, "-m", "cli"]


def write_csv(path: Path, nonce: str, rows: int) -> None:
    """`rows` new leads (unique idempotency keys), the HTTP body's fields as columns."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(workload.posted("")))
        writer.writeheader()
        for i in range(rows):
            writer.writerow(workload.posted(f"{nonce}-import-{i}"))


def rss_growth_pct(samples: list[tuple[float, int]]) -> float | None:
    """Largest RSS in the run's second half vs its first half: memory that grows with the rows
    read shows here, the interpreter's start-up does not."""
    if len(samples) < 4:
        return None
    half = samples[-1][0] / 2
    first = max(kib for t, kib in samples if t <= half)
    second = max((kib for t, kib in samples if t > half), default=first)
    return round((second - first) / first * 100, 2)


def run(bench: Bench, http_rps: float | None) -> dict[str, Any] | None:
    rows = bench.options.import_rows
    path = bench.workdir / "leads.csv"
    write_csv(path, bench.nonce, rows)
    arguments = ["--concurrency", str(workload.IMPORT_CONCURRENCY)]
    argv = [*leads_command(bench), "import", str(path), *arguments]
    command = " ".join(["leads", "import", path.name, *arguments])
    log(f"import: {command} ({rows} rows)")
    bench.checkpoint()
    before = bench.database.lead_count()
    env = dict(os.environ, DATABASE_URL=bench.database.url)
    with LoadMeter(bench.database.url, "import") as meter:
        process = bench.children.start(argv, env)
        with procfs.RssSampler(process.pid, RSS_INTERVAL_S) as rss:
            status, out, err = bench.children.finish(process, timeout=max(600, rows / 20))
    inserted = bench.database.lead_count() - before
    result: dict[str, Any] = {
        "command": command,
        "file_rows": rows,
        "exit_status": status,
        "rows_inserted": inserted,
        "rss": rss.summary(),
        "rss_growth_pct": rss_growth_pct(rss.samples),
    }
    summary = parse_summary(out)
    if summary is None:
        tail = (out.strip().splitlines() or [""])[-1] + " | " + err.strip()[-500:]
        log(f"import: no summary line from leads import (exit {status}): {tail}")
        result["error"] = tail
        return result
    result.update(
        rows=summary.rows,
        created=summary.created,
        replayed=summary.replayed,
        rejected=summary.rejected,
        seconds=summary.seconds,
        rows_per_s=summary.rows_per_s,
        not_created=rows - summary.created,
        missing_rows=max(0, summary.created - inserted),
        http_rps=http_rps,
        rows_per_s_vs_http=round(summary.rows_per_s / http_rps, 2) if http_rps else None,
        **meter.result(summary.seconds, inserted),
    )
    return result
