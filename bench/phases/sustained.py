"""Sustained load: `wrk` with CLIENTS connections, a new lead per request (bench/leads.lua), with
the CPU of everyone involved and the service's RSS over the run. Also the warm-up, the soak and
the profiled run."""

from __future__ import annotations

import json
import re
from typing import Any

from bench import procfs, workload
from bench.console import BenchError, log
from bench.context import Bench
from bench.meters import LoadMeter
from bench.processes import ROOT

LUA = ROOT / "bench" / "leads.lua"


def _wrk(bench: Bench, duration: float, nonce: str) -> dict[str, Any]:
    service = bench.running_service()
    clients = workload.CLIENTS
    argv = ["wrk", "-t", str(min(clients, procfs.nproc())), "-c", str(clients)]
    argv += ["-d", f"{duration:g}s", "--latency", "--timeout", "10s", "-s", str(LUA)]
    argv += [service.url("/api/leads"), "--", nonce, workload.SOURCE_KEY]
    argv.append(workload.lead_body_tail())
    out = bench.children.run(argv, timeout=duration + 60)
    match = re.search(r"^WRK_JSON (\{.*\})$", out, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk printed no summary:\n{out}")
    raw: dict[str, Any] = json.loads(match.group(1))
    errors = raw["errors"]
    seconds = raw["duration_us"] / 1e6
    latency = raw["latency_us"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": latency["p50"] / 1000,
        "p95_ms": latency["p95"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "non_2xx": errors["status"],
        "socket_errors": socket_errors,
        "timeouts": errors["timeout"],
        "errors": errors["status"] + socket_errors + errors["timeout"],
        "output": out,
    }


def run(bench: Bench, duration: float, label: str) -> dict[str, Any]:
    service = bench.running_service()
    log(f"{label}: wrk, {workload.CLIENTS} connections, {duration:g} s")
    bench.checkpoint()
    before = bench.database.lead_count()
    with (
        LoadMeter(bench.database.url, "wrk", service.pid) as meter,
        procfs.RssSampler(service.pid) as rss,
    ):
        result = _wrk(bench, duration, f"{bench.nonce}-{label}")
    result["rows_inserted"] = bench.database.lead_count() - before
    # wrk cuts off requests in flight at the end: their rows may exist without a response.
    answered = result["requests"] - result["errors"]
    result["missing_rows"] = max(0, answered - result["rows_inserted"])
    result.update(meter.result(result["seconds"], result["rows_inserted"], result["requests"]))
    result["rss"] = rss.summary()
    return result
