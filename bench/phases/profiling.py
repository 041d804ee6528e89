"""`--profile DIR`: one more sustained run with py-spy attached to the service; the raw stacks and
their summary (bench/profile.py) go to DIR."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import profile
from bench.console import BenchError, log
from bench.context import Bench
from bench.phases import sustained


def run(bench: Bench, directory: Path) -> dict[str, Any]:
    service, options = bench.running_service(), bench.options
    py_spy = profile.find_py_spy(options.py_spy)
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / f"py-spy-w{options.workers}.txt"
    duration = options.duration
    argv = [py_spy, "record", "--pid", str(service.pid), "--rate", "250", "--format", "raw"]
    argv += ["--output", str(raw), "--duration", f"{round(duration) + 1}"]
    if options.workers > 1:
        argv.append("--subprocesses")
    if options.profile_native:
        argv.append("--native")
    log(f"profile: py-spy attached, wrk {duration:g} s")
    recorder = bench.children.start(argv)
    time.sleep(1.0)
    load = sustained.run(bench, duration, "profile")
    _status, out, err = bench.children.finish(recorder, timeout=duration + 60)
    if not raw.exists():
        raise BenchError(f"py-spy wrote no profile: {(out + err).strip()[-2000:]}")
    summary = profile.summarize(raw)
    (directory / f"summary-w{options.workers}.md").write_text(profile.render(summary))
    return {
        "raw": str(raw),
        "rps_under_profiler": load["rps"],
        "server_cpu_cores": load["server_cpu_cores"],
        **summary,
    }
