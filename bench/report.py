"""The run's results as one markdown table; row targets and marks come from bench/targets.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench import profile, targets
from bench.new_lead_sql import CEILINGS, FOUR_STATEMENTS, ONE_STATEMENT, ratio_key
from bench.workload import CLIENTS


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


class _Table:
    def __init__(self, results: Mapping[str, Any]) -> None:
        self.results = results
        self.lines = ["| phase | metric | value | target | |", "|---|---|---|---|---|"]

    def row(self, phase: str, metric: str, value: object, *keys: str) -> None:
        """A row; with `keys`, the target of each (from the table) and whether all are met."""
        goals = [(key, t) for key in keys if (t := targets.for_key(key)) is not None]
        target = " / ".join(dict.fromkeys(f"{t.text()} ({t.source})" for _, t in goals))
        mark = ""
        if goals:
            met = all(targets.verdict(self.results, t, key).status == "met" for key, t in goals)
            mark = "ok" if met else "**FAIL**"
        self.lines.append(f"| {phase} | {metric} | {value} | {target} | {mark} |")


def _header(results: Mapping[str, Any]) -> list[str]:
    m = results["machine"]
    pg = m["postgresql"]
    return [
        f"## Lead ingestion benchmark — workers={results['workers']}, "
        f"duration={results['duration_s']:g} s",
        "",
        f"Machine: nproc={m['nproc']} ({m['cpu']}), PostgreSQL {pg['server_version']} "
        f"(synchronous_commit={pg['synchronous_commit']}, fsync={pg['fsync']}, "
        f"shared_buffers={pg['shared_buffers']}), Python {m['python']}, uvicorn {m['uvicorn']}, "
        f"SQLAlchemy {m['sqlalchemy']}, asyncpg {m['asyncpg']}, {m['wrk']}, {m['pgbench']}, "
        f"git {m['git']}.",
        f"Background load before the run: {results['background_busy_cores']} busy cores "
        "(other processes' work skews every number).",
        f"Server: {results['server']}. Service: `{results['service_command']}`"
        + (f" with {m['env']}" if m["env"] else "")
        + ".",
        "",
    ]


def _latency(table: _Table, results: Mapping[str, Any]) -> None:
    if s := results.get("sequential"):
        label = f"sequential ({s['requests']} new leads, {s['warmup']} warm-up)"
        table.row(label, "p50 ms", f"{s['p50_ms']:.2f}", "sequential.p50_ms")
        table.row(label, "p95 ms", f"{s['p95_ms']:.2f}", "sequential.p95_ms")
        table.row(label, "p99 ms", f"{s['p99_ms']:.2f}", "sequential.p99_ms")
        table.row(label, "statuses", s["statuses"], "sequential.non_201")
    for pool in ("cold_pool", "warm_pool"):
        if not (c := results.get(f"concurrent_{pool}")):
            continue
        key = f"concurrent_{pool}"
        label = f"concurrent ({c['requests']} identical, {pool.replace('_', ' ')})"
        table.row(label, "p50 / max ms", f"{c['p50_ms']:.2f} / {c['max_ms']:.2f}")
        table.row(
            label,
            "201 / 200 responses (all statuses)",
            f"{c['responses_201']} / {c['responses_200']} ({c['statuses']})",
            f"{key}.responses_201",
            f"{key}.responses_200",
        )
        table.row(
            label,
            "lead_ids / rows",
            f"{c['distinct_lead_ids']} / {c['rows']}",
            f"{key}.distinct_lead_ids",
            f"{key}.rows",
        )


def _cpu_row(table: _Table, label: str, run: Mapping[str, Any], client: str, nproc: int) -> None:
    service = f" / {run['server_cpu_cores']}" if "server_cpu_cores" in run else ""
    who = "service / " if service else ""
    table.row(
        label,
        f"CPU cores: machine busy / {who}postgres / {client} / other processes",
        f"{run['machine_busy_cores']} of {nproc}{service} / {run['postgres_cpu_cores']} / "
        f"{run[f'{client}_cpu_cores']} / {run['other_processes_cpu_cores']}",
    )


def _sustained(table: _Table, results: Mapping[str, Any]) -> None:
    if not (w := results.get("sustained")):
        return
    nproc = results["machine"]["nproc"]
    label = f"sustained (wrk, {CLIENTS} conns, {w['seconds']:g} s)"
    table.row(label, "requests/s", f"{w['rps']:.1f}")
    table.row(
        label, "p50 / p95 / p99 ms", f"{w['p50_ms']:.2f} / {w['p95_ms']:.2f} / {w['p99_ms']:.2f}"
    )
    table.row(label, "errors (non-2xx + socket + timeout)", w["errors"], "sustained.errors")
    table.row(
        label,
        "rows inserted / responses",
        f"{w['rows_inserted']} / {w['requests']}",
        "sustained.missing_rows",
    )
    table.row(
        label,
        "service CPU: cores (user + system) / µs per request",
        f"{w['server_cpu_cores']} ({w['server_cpu_user_cores']} + "
        f"{w['server_cpu_system_cores']}) / {w['server_cpu_us_per_request']}",
    )
    table.row(label, "PostgreSQL CPU µs per lead", w["postgres_cpu_us_per_lead"])
    _cpu_row(table, label, w, "wrk", nproc)
    r = w["rss"]
    table.row(
        label,
        "RSS start → end MiB",
        f"{_mib(r['start_kib'])} → {_mib(r['end_kib'])} ({r['drift_pct']:+.1f} %)",
    )


def _ceilings(table: _Table, results: Mapping[str, Any]) -> None:
    nproc = results["machine"]["nproc"]
    for name in CEILINGS:
        ratio = ratio_key(name)
        if not (p := results.get(name)):
            continue
        label = f"ceiling: {p['shape']} (pgbench, {CLIENTS} clients, -M prepared)"
        table.row(label, "TPS", f"{p['tps']:.1f}")
        table.row(label, "latency avg ms / failed", f"{p['latency_avg_ms']} / {p['failed']}")
        table.row(
            label,
            "CPU µs per lead: PostgreSQL / pgbench client",
            f"{p['postgres_cpu_us_per_lead']} / {p['pgbench_cpu_us_per_lead']}",
        )
        _cpu_row(table, label, p, "pgbench", nproc)
        if ratio in results:
            table.row(
                "sustained vs ceiling",
                f"service_rps / pgbench_tps ({p['shape']})",
                f"{results[ratio]:.2f}",
                ratio,
            )


def _import(table: _Table, results: Mapping[str, Any]) -> None:
    if not (i := results.get("import")):
        return
    label = f"import (`{i['command']}`, {i['file_rows']} rows)"
    if "rows_per_s" not in i:
        table.row(
            label, "exit status / error", f"{i['exit_status']} / {i['error']}", "import.exit_status"
        )
        return
    http = f"{i['http_rps']:.1f}" if i["http_rps"] else "not measured"
    table.row(
        label, "rows/s (its own summary) / HTTP requests/s", f"{i['rows_per_s']:.1f} / {http}"
    )
    table.row(
        label, "rows/s ÷ HTTP requests/s", i["rows_per_s_vs_http"], "import.rows_per_s_vs_http"
    )
    table.row(
        label,
        "created / replayed / rejected; rows in the database",
        f"{i['created']} / {i['replayed']} / {i['rejected']}; {i['rows_inserted']}",
        "import.not_created",
        "import.missing_rows",
    )
    table.row(label, "exit status", i["exit_status"], "import.exit_status")
    table.row(
        label,
        "CPU µs per lead: import process / PostgreSQL",
        f"{i['import_cpu_us_per_lead']} / {i['postgres_cpu_us_per_lead']}",
    )
    r = i["rss"]
    if r.get("samples"):
        table.row(
            label,
            "RSS start → max → end MiB (peak)",
            f"{_mib(r['start_kib'])} → {_mib(r['max_kib'])} → {_mib(r['end_kib'])} "
            f"({_mib(r['peak_hwm_kib'])})",
        )
    table.row(
        label, "RSS growth, 2nd half vs 1st (max) %", i["rss_growth_pct"], "import.rss_growth_pct"
    )


def _round_trips(table: _Table, results: Mapping[str, Any]) -> None:
    if not (rt := results.get("round_trips")):
        return
    for kind in ("new_lead", "replay"):
        each, phase = rt[kind], f"round trips ({kind.replace('_', ' ')})"
        key = f"round_trips.{kind}"
        table.row(phase, "statements", each["statements"])
        table.row(
            phase,
            "round trips incl. BEGIN/COMMIT (asyncpg query log)",
            each["round_trips"],
            f"{key}.round_trips",
        )
        table.row(
            phase,
            "round trips on the wire (proxy)",
            each["wire_round_trips"],
            f"{key}.wire_round_trips",
        )
    table.row(
        "round trips (first request on a new connection)",
        "on the wire",
        rt["cold_new_lead"]["wire_round_trips"],
    )


def _soak_and_log(table: _Table, results: Mapping[str, Any]) -> None:
    if soak := results.get("soak"):
        r = soak["rss"]
        label = f"soak (wrk, {CLIENTS} conns, {soak['seconds']:g} s)"
        table.row(
            label, "requests/s / errors", f"{soak['rps']:.1f} / {soak['errors']}", "soak.errors"
        )
        table.row(
            label,
            "RSS start → end (max) MiB",
            f"{_mib(r['start_kib'])} → {_mib(r['end_kib'])} ({_mib(r['max_kib'])})",
        )
        table.row(label, "RSS drift", f"{r['drift_pct']:+.2f} %", "soak.rss.drift_pct")
    if log := results.get("service_log"):
        table.row(
            "service log",
            "tracebacks / ERROR lines",
            f"{log['tracebacks']} / {log['error_lines']}",
            "service_log.tracebacks",
            "service_log.error_lines",
        )


def render(results: Mapping[str, Any]) -> str:
    table = _Table(results)
    for section in (_latency, _sustained, _ceilings, _import, _round_trips, _soak_and_log):
        section(table, results)
    lines = _header(results) + table.lines
    if rt := results.get("round_trips"):
        lines += ["", "Wire round trips of one warm new lead and one replay (proxy):", ""]
        for kind in ("new_lead", "replay"):
            for i, flight in enumerate(rt[kind]["wire"], 1):
                lines.append(f"- {kind.replace('_', ' ')} {i}: {flight}")
    if notes := results.get("notes"):
        lines += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    if prof := results.get("profile"):
        lines += ["", "Profile (py-spy, on-CPU samples of the service):", ""]
        lines.append(profile.render(prof, top=12))
    return "\n".join(lines)


def final_lines(results: Mapping[str, Any]) -> list[str]:
    """The ratios; the four-statement one last, where scripts have always read it."""
    return [
        f"ratio service_rps / {name}_tps = {results[ratio_key(name)]:.2f}"
        for name in (ONE_STATEMENT, FOUR_STATEMENTS)
        if ratio_key(name) in results
    ]
