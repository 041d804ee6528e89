"""Latency and exactly-once, each from bench/client.py in a process of its own: sequential new
leads on one keep-alive connection, and identical POSTs released at once."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

from bench import workload
from bench.console import log
from bench.context import Bench


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _client(bench: Bench, *extra: str) -> dict[str, Any]:
    service = bench.running_service()
    argv = [sys.executable, "-m", "bench.client", *extra, "--port", str(service.port)]
    result: dict[str, Any] = json.loads(bench.children.run(argv, timeout=300))
    return result


def sequential(bench: Bench) -> dict[str, Any]:
    count, warmup = bench.options.count, bench.options.warmup
    log(f"sequential: {warmup} warm-up + {count} measured new-lead POSTs")
    mode = ["sequential", "--count", str(count), "--warmup", str(warmup)]
    raw = _client(bench, *mode, "--nonce", f"{bench.nonce}-s")
    latencies = raw["latencies_ms"]
    return {
        "requests": len(latencies),
        "warmup": warmup,
        "statuses": raw["statuses"],
        "non_201": len(latencies) - raw["statuses"].get("201", 0),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p95_ms": round(percentile(latencies, 95), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "max_ms": round(max(latencies), 3),
    }


def concurrent(bench: Bench, label: str) -> dict[str, Any]:
    """IDENTICAL identical POSTs at once. Run twice: first while the pool still has to open its
    connections (after the sequential phase it holds one), then with a warm pool."""
    n = workload.IDENTICAL
    log(f"concurrent ({label}): {n} identical POSTs at once")
    raw = _client(bench, "concurrent", "--n", str(n), "--nonce", f"{bench.nonce}-{label}")
    results = raw["results"]
    statuses = [r["status"] for r in results]
    lead_ids = {r.get("lead_id") for r in results}
    latencies = [r["ms"] for r in results if r["ms"] is not None]
    return {
        "requests": n,
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses), key=str)},
        "responses_201": statuses.count(201),
        "responses_200": statuses.count(200),
        # a response without a lead_id counts as one more distinct value
        "distinct_lead_ids": len(lead_ids),
        "rows": bench.database.lead_count(raw["idempotency_key"]),
        "p50_ms": round(percentile(latencies, 50), 3) if latencies else None,
        "max_ms": round(max(latencies), 3) if latencies else None,
        "errors": [r["error"] for r in results if "error" in r],
    }
