"""What bench/run prints: medians over the pairs, the service's ratios to the yardstick and to
pgbench (medians of the per-pair ratios), and the targets of SPEC §9."""

from __future__ import annotations

import operator
import statistics
from typing import Any

APPS = ("service", "yardstick")
ROWS = (  # label, metric, whether the service/yardstick ratio is printed
    ("sequential p50 (ms)", "seq_p50_ms", False),
    ("sequential p95 (ms)", "seq_p95_ms", False),
    ("sequential p99 (ms)", "seq_p99_ms", False),
    ("16 clients: requests/s", "rps", True),
    ("16 clients: p50 (ms)", "p50_ms", False),
    ("16 clients: p99 (ms)", "p99_ms", True),
    ("worker CPU per request (µs)", "cpu_us_per_request", True),
    ("PostgreSQL CPU per lead (µs)", "postgres_cpu_us_per_lead", False),
    ("cores: app", "app_cores", False),
    ("cores: PostgreSQL", "postgres_cores", False),
    ("cores: other processes", "other_cores", False),
    ("errors (non-2xx, socket)", "errors", False),
)
TARGETS = (  # text, where the value is, comparison, bound
    ("sequential p50 <= 3 ms", "service", "seq_p50_ms", operator.le, 3),
    ("sequential p95 <= 6 ms", "service", "seq_p95_ms", operator.le, 6),
    ("sequential p99 <= 12 ms", "service", "seq_p99_ms", operator.le, 12),
    ("requests/s >= 0.5 x pgbench tps", "ratios", "service/pgbench", operator.ge, 0.5),
    ("round trips per new lead <= 1 (§11)", "round_trips", "new_lead", operator.le, 1),
    ("round trips per replay <= 2 (§11)", "round_trips", "replay", operator.le, 2),
)


def number(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    if isinstance(value, int) or value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Medians per app and for pgbench, per-pair ratios, and each target met or missed."""
    pairs = results["pairs"]
    summary: dict[str, Any] = {}
    for name in (*APPS, "pgbench"):
        found: dict[str, list[float]] = {}
        for pair in pairs:
            for metric, value in pair[name].items():
                if isinstance(value, int | float):
                    found.setdefault(metric, []).append(value)
        summary[name] = {metric: statistics.median(values) for metric, values in found.items()}
    ratios = {
        f"service/yardstick {m}": [p["service"][m] / p["yardstick"][m] for p in pairs]
        for _, m, printed in ROWS
        if printed
    }
    for name in APPS:
        ratios[f"{name}/pgbench"] = [p[name]["rps"] / p["pgbench"]["tps"] for p in pairs]
    summary["ratios"] = {
        name: {"median": statistics.median(v), "min": min(v), "max": max(v)}
        for name, v in ratios.items()
    }
    summary["targets"] = []
    for text, scope, metric, check, bound in TARGETS:
        if scope == "round_trips":
            value = results["round_trips"]["service"][metric]
        elif scope == "ratios":
            value = summary["ratios"][metric]["median"]
        else:
            value = summary[scope].get(metric)
        met = value is not None and check(value, bound)
        summary["targets"].append({"target": text, "value": value, "met": met})
    return summary


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join([row[0].ljust(widths[0]), *map(str.rjust, row[1:], widths[1:])]).rstrip()
        for row in rows
    ]


def _ratio(found: dict[str, float], several: bool) -> str:
    spread = f" [{found['min']:.2f}-{found['max']:.2f}]" if several else ""
    return f"{found['median']:.2f}{spread}"


def render(results: dict[str, Any]) -> str:
    summary, options, facts = results["summary"], results["options"], results["machine"]
    several = len(results["pairs"]) > 1
    postgres, trips = facts["postgresql"], results["round_trips"]
    lines = [
        f"bench/run: {options['workers']} worker(s), {len(results['pairs'])} pair(s) of "
        f"{options['duration']} s runs, {options['requests']} sequential requests, "
        f"Accept: {options['accept']}"
        + ("; medians, ratios as median [min-max] of the pairs" if several else ""),
        f"service: {results['service_command']}",
        f"machine: {facts['nproc']} cores, PostgreSQL {postgres['server_version']} "
        f"(synchronous_commit {postgres['synchronous_commit']}), commit {facts['commit']}, "
        f"busy with other work before the run: {results['busy_before_cores']} cores",
        "",
    ]
    rows = [["", *APPS, "service/yardstick"]]
    rows.append(
        ["round trips: new lead / replay"]
        + [f"{trips[n]['new_lead']} / {trips[n]['replay']}" for n in APPS]
        + [""]
    )
    for label, metric, printed in ROWS:
        key = f"service/yardstick {metric}"
        ratio = _ratio(summary["ratios"][key], several) if printed else ""
        rows.append([label, *(number(summary[n].get(metric)) for n in APPS), ratio])
    ceilings = [_ratio(summary["ratios"][f"{n}/pgbench"], several) for n in APPS]
    rows.append(["requests/s / pgbench tps", *ceilings, ""])
    lines += _table(rows)
    ceiling = summary["pgbench"]
    lines += [
        "",
        "pgbench, the service's statement for one new lead (WRITE_LEAD), 16 clients: "
        f"{number(ceiling['tps'])} tps, PostgreSQL CPU per lead "
        f"{number(ceiling.get('postgres_cpu_us_per_lead'))} µs",
    ]
    if "import" in results:
        found = results["import"]
        lines.append(
            f"leads import: {number(found['rows_per_s'])} rows/s "
            f"({found['created']:,} of {found['rows']:,} rows created in {found['seconds']} s)"
        )
    if several:
        rows = [["pair", "first", "service r/s", "yardstick r/s", "pgbench tps"]]
        for i, pair in enumerate(results["pairs"], 1):
            rates = (number(pair[name]["rps"]) for name in APPS)
            rows.append([str(i), pair["order"][0], *rates, number(pair["pgbench"]["tps"])])
        lines += ["", *_table(rows)]
    lines += ["", "targets (SPEC §9):"]
    for target in summary["targets"]:
        verdict = "met" if target["met"] else "MISSED"
        lines.append(f"  {target['target']}: {number(target['value'])} {verdict}")
    return "\n".join(lines)
