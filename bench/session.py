"""One benchmark run: the phases in order against a fresh database, and the cleanup on every
way out (success, error, Ctrl-C, SIGTERM, SIGHUP): children killed, service stopped, database
dropped."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from bench import machine, procfs
from bench.console import BenchError, log
from bench.context import Bench
from bench.database import BenchDatabase
from bench.new_lead_sql import ratio_key
from bench.options import Options
from bench.phases import bulk_import, ceiling, latency, profiling, round_trips, sustained
from bench.service import Service


def _phases(bench: Bench, results: dict[str, Any]) -> None:
    options = bench.options
    bench.database.create()
    results["server"] = bench.database.server
    results["machine"] = machine.facts(bench.database)
    results["background_busy_cores"] = machine.background_load()
    results["round_trips"] = round_trips.run(bench)
    service = bench.service = Service(
        bench.database.url, bench.workdir, options.workers, options.access_log
    )
    results["service_command"] = service.command
    service.start()
    results["rss_after_start_kib"] = procfs.tree_memory_kib(service.pid)[0]
    results["sequential"] = latency.sequential(bench)
    for pool in ("cold_pool", "warm_pool"):
        results[f"concurrent_{pool}"] = latency.concurrent(bench, pool)
    sustained.run(bench, min(2.0, options.duration), "warmup")
    results["sustained"] = sustained.run(bench, options.duration, "sustained")
    rps = results["sustained"]["rps"]
    for script in ceiling.scripts(bench):
        results[script.name] = ceiling.run(bench, script, options.duration)
        results[ratio_key(script.name)] = round(rps / results[script.name]["tps"], 4)
    if (imported := bulk_import.run(bench, rps)) is not None:
        results["import"] = imported
    if options.soak > 0:
        results["soak"] = sustained.run(bench, options.soak, "soak")
    if options.profile:
        results["profile"] = profiling.run(bench, options.profile)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(options: Options) -> tuple[int, dict[str, Any]]:
    """(exit status, results): 0 when every phase ran, 1 on an error, 130 when interrupted."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="leads-bench-"))
    bench = Bench(options, workdir, BenchDatabase(workdir))
    results: dict[str, Any] = {"workers": options.workers, "duration_s": options.duration}
    status = 0
    try:
        _phases(bench, results)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    except BenchError as error:
        log(f"error: {error}")
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.children.kill_all()
        try:
            if bench.service is not None and (facts := bench.service.stop()) is not None:
                results["service_log"] = facts
        finally:
            try:
                bench.database.drop()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    if bench.notes:
        results["notes"] = bench.notes
    return status, results
