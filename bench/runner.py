"""The benchmark behind `bench/run` (SPEC §9). Run from the repository root with the venv's python.

Phases, against a fresh database created (and dropped) on a real PostgreSQL:

1. round trips: statements and database round trips per new lead and per replay (in-process app,
   counted by asyncpg's query logger and by a wire-protocol proxy: bench/roundtrips.py);
2. the service, started with the spec command, `--workers N`;
3. sequential: N new-lead POSTs after a warm-up, one keep-alive connection (bench/client.py);
4. concurrent: 20 identical POSTs released at once; exactly one 201, one lead_id, one row;
5. sustained: `wrk` with 16 connections for `--duration` s, a unique key per request;
6. ceiling: `pgbench` running the service's own SQL for one new lead, 16 clients, same duration;
7. soak (`--soak S`): a sustained run of S seconds and the RSS drift over it;
8. profile (`--profile DIR`): one more sustained run under py-spy, summarized by bench/profile.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from infrastructure import migrate
from infrastructure.local_postgres import (
    LocalPostgres,
    embedded_bin_dir,
    free_port,
    resolve_server,
)
from infrastructure.provisioning import drop_database, ensure_database

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SOURCE_KEY = "bench-source"
# Issue #6 sets the target for 16 clients on the 2-core machine (SPEC §9 said 0.5).
RATIO_TARGET = 0.35
CLIENTS = 16
IDENTICAL = 20

# The lead the clients post (bench/client.py, bench/leads.lua), as the service stores it; pgbench
# binds the same values.
LEAD_VALUES = {
    "idempotency_key_origin": "client",
    "is_test": "false",
    "email": "Bench.User@Example.com",
    "normalized_email": "bench.user@example.com",
    "phone": "(415) 555-0132",
    "normalized_phone": "+14155550132",
    "first_name": "Bench",
    "last_name": "User",
    "address": "1 Market St",
    "city": "San Francisco",
    "region": "CA",
    "postal_code": "94105",
    "country": "US",
    "attributes": '{"utm_source":"bench","campaign":"spring"}',
    "received_host": "127.0.0.1",
    "received_path": "/api/leads",
}


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- small helpers


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def libpq_url(url: str) -> str:
    parts = urlsplit(url.strip())
    return urlunsplit(parts._replace(scheme="postgresql"))


def command_output(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def find_pgbench() -> str:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
    if candidates:
        return str(candidates[0])
    found = shutil.which("pgbench")
    if found:
        return found
    bin_dir = embedded_bin_dir()
    if bin_dir is not None and (bin_dir / "pgbench").exists():
        return str(bin_dir / "pgbench")
    raise BenchError("pgbench not found: apt-get install postgresql-15 (or run script/setup)")


def descendants(pid: int) -> list[int]:
    """`pid` and all its descendant processes (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def rss_kib(pid: int) -> int:
    """VmRSS of the service: the process plus its workers."""
    total = 0
    for each in descendants(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total += int(match.group(1))
    return total


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the service and its workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for each in descendants(pid):
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        user += int(fields[11])
        system += int(fields[12])
    return user / ticks, system / ticks


def pids_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes; ones that have exited count 0."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class RssSampler:
    """Samples the service's RSS every `interval` seconds in a background thread."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self.samples.append((0.0, rss_kib(self.pid)))
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((round(time.monotonic() - self._started, 1), rss_kib(self.pid)))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((round(time.monotonic() - self._started, 1), rss_kib(self.pid)))

    def summary(self) -> dict[str, Any]:
        start, end = self.samples[0][1], self.samples[-1][1]
        return {
            "start_kib": start,
            "end_kib": end,
            "max_kib": max(kib for _, kib in self.samples),
            "drift_pct": round((end - start) / start * 100, 2) if start else None,
            "samples": self.samples,
        }


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)
    server_url: str = ""
    db_name: str = ""
    db_url: str = ""
    embedded: LocalPostgres | None = None
    service: subprocess.Popen[bytes] | None = None
    service_log: Path | None = None
    port: int = 0
    children: list[subprocess.Popen[Any]] = field(default_factory=list)
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    # ---------------------------------------------------------------- database

    def create_database(self) -> None:
        resolved = resolve_server(self.workdir / "embedded")
        self.embedded = resolved.embedded
        self.server_url = libpq_url(resolved.server_url)
        self.results["server"] = resolved.description
        self.db_name = f"leads_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        log(f"database {self.db_name} on {resolved.description}")
        self.db_url = asyncio.run(ensure_database(self.server_url, self.db_name))
        asyncio.run(migrate.upgrade(self.db_url))
        asyncio.run(self._catalog())

    async def _catalog(self) -> None:
        """A small catalog by plain SQL (SPEC §4): 3 markets, 2 verticals, 3 offers, 5 sources."""
        connection = await asyncpg.connect(self.db_url)
        try:
            async with connection.transaction():
                for code, region in (("us", "US"), ("gb", "GB"), ("de", "DE")):
                    await connection.execute(
                        "INSERT INTO markets (code, name, phone_region) VALUES ($1, $1, $2)",
                        code,
                        region,
                    )
                for code in ("solar", "insurance"):
                    await connection.execute(
                        "INSERT INTO verticals (code, name) VALUES ($1, $1)", code
                    )
                await connection.execute(
                    "INSERT INTO offers (code, name, market_id, vertical_id) "
                    "SELECT m.code || '-' || v.code, m.code || ' ' || v.code, m.market_id, "
                    "v.vertical_id FROM markets m CROSS JOIN verticals v "
                    "WHERE (m.code, v.code) IN (('us','solar'), ('gb','solar'), ('de','insurance'))"
                )
                await connection.execute(
                    "INSERT INTO sources (code, name, offer_id, source_key) "
                    "SELECT 'src-' || n, 'Source ' || n, "
                    "(SELECT offer_id FROM offers WHERE code = 'us-solar'), "
                    "CASE WHEN n = 1 THEN $1 ELSE 'bench-other-' || n END "
                    "FROM generate_series(1, 5) n",
                    SOURCE_KEY,
                )
                await connection.execute(
                    "INSERT INTO source_http_mappings (source_id, hostname, path_prefix) "
                    "SELECT source_id, 'bench' || source_id || '.example.com', '/' FROM sources"
                )
        finally:
            await connection.close()

    async def _query(self, sql: str, *params: object) -> Any:
        connection = await asyncpg.connect(self.db_url)
        try:
            return await connection.fetchval(sql, *params)
        finally:
            await connection.close()

    def query(self, sql: str, *params: object) -> Any:
        return asyncio.run(self._query(sql, *params))

    def postgres_pids(self) -> list[int]:
        """The server processes working for this run: its database's backends and the
        background processes (WAL writer, checkpointer…), when they run on this machine."""

        async def fetch() -> list[int]:
            connection = await asyncpg.connect(self.db_url)
            try:
                rows = await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
                    "(datname = current_database() OR backend_type <> 'client backend')"
                )
                return [row["pid"] for row in rows]
            finally:
                await connection.close()

        pids = asyncio.run(fetch())
        return [pid for pid in pids if Path(f"/proc/{pid}").exists()]

    def checkpoint(self) -> None:
        """Start the sustained run and pgbench alike: right after a checkpoint (so both pay the
        same full-page writes), not wherever the server's checkpoint timer happens to be."""
        try:
            self.query("CHECKPOINT")
        except asyncpg.PostgresError as error:  # needs superuser or pg_checkpoint
            self.results.setdefault("notes", []).append(f"CHECKPOINT not allowed: {error}")

    def lead_count(self) -> int:
        return int(self.query("SELECT count(*) FROM leads"))

    def drop_database(self) -> None:
        if self.db_name:
            asyncio.run(drop_database(self.server_url, self.db_name))
            log(f"dropped database {self.db_name}")
            self.db_name = ""
        if self.embedded is not None:
            self.embedded.remove()
            self.embedded = None

    # ---------------------------------------------------------------- machine

    def background_load(self, seconds: float = 2.0) -> None:
        """How busy the machine is before we load it: other work skews every number."""
        before = machine_cpu()
        time.sleep(seconds)
        after = machine_cpu()
        cores = (after[0] - before[0]) / (after[1] - before[1]) * len(os.sched_getaffinity(0))
        self.results["background_busy_cores"] = round(cores, 2)
        if cores > 0.25:
            log(f"warning: the machine is already busy ({cores:.2f} cores) before the run")

    def machine(self) -> None:
        async def server_facts() -> dict[str, str]:
            connection = await asyncpg.connect(self.db_url)
            try:
                facts = {"server_version": await connection.fetchval("SHOW server_version")}
                for name in (
                    "synchronous_commit",
                    "fsync",
                    "shared_buffers",
                    "max_connections",
                    "wal_level",
                ):
                    facts[name] = await connection.fetchval(f"SHOW {name}")
                return facts
            finally:
                await connection.close()

        cpu = "unknown"
        try:
            found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
            cpu = found.group(1) if found else cpu
        except OSError:
            pass
        git = command_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        dirty = command_output(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked=no"])
        import sqlalchemy
        import uvicorn

        self.results["machine"] = {
            "nproc": len(os.sched_getaffinity(0)),
            "cpu": cpu,
            "kernel": platform.release(),
            "python": platform.python_version(),
            "postgresql": asyncio.run(server_facts()),
            "uvicorn": uvicorn.__version__,
            "sqlalchemy": sqlalchemy.__version__,
            "asyncpg": asyncpg.__version__,
            "wrk": command_output(["wrk", "--version"]).split("Copyright")[0].strip(),
            "pgbench": command_output([find_pgbench(), "--version"]),
            "git": git + (" (modified files)" if dirty not in ("", "unavailable") else ""),
            "env": {k: v for k, v in os.environ.items() if k.startswith("LEADS_")},
        }

    # ---------------------------------------------------------------- round trips

    def round_trips(self) -> None:
        from bench import roundtrips

        log("counting statements and round trips (in-process app, wire proxy)")
        self.results["round_trips"] = asyncio.run(
            roundtrips.count(self.db_url, SOURCE_KEY, self.nonce)
        )

    # ---------------------------------------------------------------- the service

    def start_service(self) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "web.app:app", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port)]
        if self.args.workers > 1:
            argv += ["--workers", str(self.args.workers)]
        if self.args.no_access_log:
            argv.append("--no-access-log")
        self.results["service_command"] = " ".join(["python", *argv[1:]])
        env = dict(os.environ, DATABASE_URL=self.db_url)
        self.service_log = self.workdir / "service.log"
        log(f"starting: {self.results['service_command']}")
        with self.service_log.open("wb") as out:
            self.service = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                raise BenchError(f"the service exited ({self.service.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url("/readyz"), timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        else:
            raise BenchError(f"/readyz did not answer 200 within 60 s:\n{self.tail()}")
        # uvicorn's workers each answer /readyz once they are up: give them all time to boot.
        if self.args.workers > 1:
            self._wait_for_workers()
        self.results["rss_after_start_kib"] = rss_kib(self.service.pid)
        log(f"service ready on port {self.port} (pid {self.service.pid})")

    def _wait_for_workers(self) -> None:
        assert self.service is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            started = self.service_log.read_text(errors="replace") if self.service_log else ""
            if started.count("Application startup complete") >= self.args.workers:
                return
            time.sleep(0.1)
        raise BenchError(f"not all {self.args.workers} workers started:\n{self.tail()}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def tail(self, lines: int = 40) -> str:
        if self.service_log is None or not self.service_log.exists():
            return ""
        return "\n".join(self.service_log.read_text(errors="replace").splitlines()[-lines:])

    def stop_service(self) -> None:
        if self.service is None:
            return
        if self.service.poll() is None:
            with _suppress_lookup():
                os.killpg(self.service.pid, signal.SIGTERM)
            try:
                self.service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with _suppress_lookup():
                    os.killpg(self.service.pid, signal.SIGKILL)
                self.service.wait(timeout=5)
        if self.service_log is not None and self.service_log.exists():
            text = self.service_log.read_text(errors="replace")
            self.results["service_log"] = {
                "tracebacks": text.count("Traceback (most recent call last)"),
                "error_lines": sum(1 for line in text.splitlines() if " ERROR " in line),
            }
        log("service stopped")
        self.service = None

    # ---------------------------------------------------------------- phases

    def child(self, argv: list[str], timeout: float) -> str:
        """Run a child process, tracked so an interrupt ends it; returns its stdout."""
        process = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.children.append(process)
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            self.children.remove(process)
        if process.returncode != 0:
            raise BenchError(f"{argv[0]} failed ({process.returncode}): {err.strip()[-2000:]}")
        return out

    def client(self, *extra: str, timeout: float = 300) -> dict[str, Any]:
        argv = [sys.executable, "-m", "bench.client", *extra, "--port", str(self.port)]
        argv += ["--source-key", SOURCE_KEY]
        result: dict[str, Any] = json.loads(self.child(argv, timeout))
        return result

    def sequential(self) -> None:
        count, warmup = self.args.count, self.args.warmup
        log(f"sequential: {warmup} warm-up + {count} measured new-lead POSTs")
        raw = self.client(
            "sequential",
            "--count",
            str(count),
            "--warmup",
            str(warmup),
            "--nonce",
            f"{self.nonce}-s",
        )
        latencies = raw["latencies_ms"]
        self.results["sequential"] = {
            "requests": len(latencies),
            "warmup": warmup,
            "statuses": raw["statuses"],
            "p50_ms": round(percentile(latencies, 50), 3),
            "p95_ms": round(percentile(latencies, 95), 3),
            "p99_ms": round(percentile(latencies, 99), 3),
            "mean_ms": round(statistics.fmean(latencies), 3),
            "max_ms": round(max(latencies), 3),
        }

    def concurrent(self, label: str) -> None:
        """20 identical POSTs at once; run twice: first while the pool still has to open its
        connections (after the sequential phase it holds one), then with a warm pool."""
        log(f"concurrent ({label}): {IDENTICAL} identical POSTs at once")
        raw = self.client("concurrent", "--n", str(IDENTICAL), "--nonce", f"{self.nonce}-{label}")
        results = raw["results"]
        statuses = [r["status"] for r in results]
        lead_ids = {r.get("lead_id") for r in results}
        latencies = [r["ms"] for r in results if r["ms"] is not None]
        rows = int(
            self.query(
                "SELECT count(*) FROM leads WHERE idempotency_key = $1", raw["idempotency_key"]
            )
        )
        checks = {
            "one_201": statuses.count(201) == 1,
            "nineteen_200": statuses.count(200) == IDENTICAL - 1,
            "one_lead_id": len(lead_ids) == 1 and None not in lead_ids,
            "one_row": rows == 1,
        }
        self.results[f"concurrent_{label}"] = {
            "requests": IDENTICAL,
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses), key=str)},
            "distinct_lead_ids": len(lead_ids),
            "rows": rows,
            "p50_ms": round(percentile(latencies, 50), 3) if latencies else None,
            "max_ms": round(max(latencies), 3) if latencies else None,
            "checks": checks,
            "ok": all(checks.values()),
            "errors": [r["error"] for r in results if "error" in r],
        }

    def wrk(self, duration: float, nonce: str) -> dict[str, Any]:
        argv = ["wrk", "-t", str(min(CLIENTS, len(os.sched_getaffinity(0)))), "-c", str(CLIENTS)]
        argv += ["-d", f"{duration:g}s", "--latency", "--timeout", "10s"]
        argv += ["-s", str(BENCH / "leads.lua"), self.url("/api/leads"), "--", nonce, SOURCE_KEY]
        out = self.child(argv, timeout=duration + 60)
        match = re.search(r"^WRK_JSON (\{.*\})$", out, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk printed no summary:\n{out}")
        raw: dict[str, Any] = json.loads(match.group(1))
        errors = raw["errors"]
        seconds = raw["duration_us"] / 1e6
        lat = raw["latency_us"]
        return {
            "requests": raw["requests"],
            "seconds": round(seconds, 2),
            "rps": round(raw["requests"] / seconds, 1),
            "p50_ms": lat["p50"] / 1000,
            "p95_ms": lat["p95"] / 1000,
            "p99_ms": lat["p99"] / 1000,
            "max_ms": lat["max"] / 1000,
            "non_2xx": errors["status"],
            "socket_errors": errors["connect"] + errors["read"] + errors["write"],
            "timeouts": errors["timeout"],
            "errors": errors["status"]
            + errors["connect"]
            + errors["read"]
            + errors["write"]
            + errors["timeout"],
            "output": out,
        }

    def sustained(self, duration: float, label: str) -> dict[str, Any]:
        assert self.service is not None
        log(f"{label}: wrk, {CLIENTS} connections, {duration:g} s")
        self.checkpoint()
        before_rows, before_cpu = self.lead_count(), cpu_seconds(self.service.pid)
        pg_pids = self.postgres_pids()
        before_pg, before_machine = pids_cpu_seconds(pg_pids), machine_cpu()
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        with RssSampler(self.service.pid) as sampler:
            result = self.wrk(duration, f"{self.nonce}-{label}")
        after_cpu = cpu_seconds(self.service.pid)
        after_pg, after_machine = pids_cpu_seconds(pg_pids), machine_cpu()
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = result["seconds"]
        busy = after_machine[0] - before_machine[0]
        nproc = len(os.sched_getaffinity(0))
        result["machine_busy_cores"] = round(
            busy / (after_machine[1] - before_machine[1]) * nproc, 2
        )
        result["postgres_cpu_cores"] = (
            round((after_pg - before_pg) / seconds, 2) if pg_pids else None
        )
        result["wrk_cpu_cores"] = round(
            (
                after_children.ru_utime
                + after_children.ru_stime
                - before_children.ru_utime
                - before_children.ru_stime
            )
            / seconds,
            2,
        )
        user, system = after_cpu[0] - before_cpu[0], after_cpu[1] - before_cpu[1]
        result["server_cpu_cores"] = round((user + system) / result["seconds"], 2)
        result["server_cpu_user_cores"] = round(user / result["seconds"], 2)
        result["server_cpu_system_cores"] = round(system / result["seconds"], 2)
        result["server_cpu_us_per_request"] = (
            round((user + system) / result["requests"] * 1e6) if result["requests"] else None
        )
        result["other_processes_cpu_cores"] = round(
            result["machine_busy_cores"]
            - result["server_cpu_cores"]
            - (result["postgres_cpu_cores"] or 0)
            - result["wrk_cpu_cores"],
            2,
        )
        result["rows_inserted"] = self.lead_count() - before_rows
        result["rss"] = sampler.summary()
        return result

    def pgbench(self, duration: float) -> None:
        from infrastructure.repositories import INSERT_LEAD, SOURCE_BY_KEY

        # The service's own statements; only lead_id (a uuid5 computed by the service) is made
        # by the server here, since pgbench variables cannot hold a fresh uuid.
        insert = INSERT_LEAD.text.replace(":lead_id", "gen_random_uuid()")
        assert ":lead_id" not in insert
        script = self.workdir / "new_lead.sql"
        script.write_text(
            "-- one new lead, the service's transaction shape (bench/runner.py writes this)\n"
            "\\set idempotency_key :client_id * 1000000000000000 + random(1, 999999999999999)\n"
            "BEGIN;\n"
            f"{SOURCE_BY_KEY.text} \\gset\n"
            f"{insert};\n"
            "COMMIT;\n"
        )
        nproc = len(os.sched_getaffinity(0))
        argv = [find_pgbench(), "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", str(nproc)]
        argv += ["-T", f"{round(duration)}", "-f", str(script), "-D", f"source_key={SOURCE_KEY}"]
        for name, value in LEAD_VALUES.items():
            argv += ["-D", f"{name}={value}"]
        argv.append(self.db_url)
        log(f"pgbench: {CLIENTS} clients, {round(duration)} s, the service's new-lead SQL")
        self.checkpoint()
        before = self.lead_count()
        before_machine = machine_cpu()
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = self.child(argv, timeout=duration + 120)
        after_machine = machine_cpu()
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        client_cpu = (
            after_children.ru_utime
            + after_children.ru_stime
            - before_children.ru_utime
            - before_children.ru_stime
        )
        busy_share = (after_machine[0] - before_machine[0]) / (after_machine[1] - before_machine[1])
        tps = re.search(r"^tps = ([\d.]+)", out, re.MULTILINE)
        latency = re.search(r"^latency average = ([\d.]+) ms", out, re.MULTILINE)
        failed = re.search(r"^number of failed transactions: (\d+)", out, re.MULTILINE)
        if tps is None:
            raise BenchError(f"pgbench printed no tps:\n{out}")
        self.results["pgbench"] = {
            "tps": float(tps.group(1)),
            "latency_avg_ms": float(latency.group(1)) if latency else None,
            "failed": int(failed.group(1)) if failed else 0,
            "rows_inserted": self.lead_count() - before,
            "machine_busy_cores": round(busy_share * nproc, 2),
            "pgbench_cpu_cores": round(client_cpu / duration, 2),
            "script": script.read_text(),
            "output": out,
        }

    def profile(self, directory: Path) -> None:
        from bench import profile

        assert self.service is not None
        py_spy = profile.find_py_spy(self.args.py_spy)
        directory.mkdir(parents=True, exist_ok=True)
        raw = directory / f"py-spy-w{self.args.workers}.txt"
        duration = self.args.duration
        argv = [py_spy, "record", "--pid", str(self.service.pid), "--rate", "250"]
        argv += ["--format", "raw", "--output", str(raw), "--duration", f"{round(duration) + 1}"]
        if self.args.workers > 1:
            argv.append("--subprocesses")
        if self.args.profile_native:
            argv.append("--native")
        log(f"profile: py-spy attached, wrk {duration:g} s")
        recorder = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.children.append(recorder)
        try:
            time.sleep(1.0)
            load = self.sustained(duration, "profile")
            out, _ = recorder.communicate(timeout=duration + 60)
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()
            self.children.remove(recorder)
        if not raw.exists():
            raise BenchError(f"py-spy wrote no profile: {out!r}")
        summary = profile.summarize(raw)
        (directory / f"summary-w{self.args.workers}.md").write_text(profile.render(summary))
        self.results["profile"] = {
            "raw": str(raw),
            "rps_under_profiler": load["rps"],
            "server_cpu_cores": load["server_cpu_cores"],
            **summary,
        }

    def kill_children(self) -> None:
        for process in list(self.children):
            if process.poll() is None:
                process.kill()
                process.wait()


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError)


# --------------------------------------------------------------------------- report


def ok(flag: bool) -> str:
    return "ok" if flag else "**FAIL**"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    pg = m["postgresql"]
    lines = [
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
        "| phase | metric | value | target | |",
        "|---|---|---|---|---|",
    ]

    def row(phase: str, metric: str, value: object, target: str = "", flag: bool | None = None):
        mark = "" if flag is None else ok(flag)
        lines.append(f"| {phase} | {metric} | {value} | {target} | {mark} |")

    s = results.get("sequential")
    if s:
        label = f"sequential ({s['requests']} new leads, {s['warmup']} warm-up)"
        row(label, "p50 ms", f"{s['p50_ms']:.2f}", "≤ 3", s["p50_ms"] <= 3)
        row(label, "p95 ms", f"{s['p95_ms']:.2f}", "≤ 6", s["p95_ms"] <= 6)
        row(label, "p99 ms", f"{s['p99_ms']:.2f}", "≤ 12", s["p99_ms"] <= 12)
        row(label, "statuses", s["statuses"], "all 201", s["statuses"] == {"201": s["requests"]})
    for pool in ("cold_pool", "warm_pool"):
        c = results.get(f"concurrent_{pool}")
        if not c:
            continue
        label = f"concurrent ({c['requests']} identical, {pool.replace('_', ' ')})"
        row(label, "p50 / max ms", f"{c['p50_ms']:.2f} / {c['max_ms']:.2f}")
        row(
            label,
            "statuses",
            c["statuses"],
            "one 201, nineteen 200",
            c["checks"]["one_201"] and c["checks"]["nineteen_200"],
        )
        row(
            label,
            "lead_ids / rows",
            f"{c['distinct_lead_ids']} / {c['rows']}",
            "1 / 1",
            c["checks"]["one_lead_id"] and c["checks"]["one_row"],
        )
    w = results.get("sustained")
    if w:
        label = f"sustained (wrk, {CLIENTS} conns, {w['seconds']:g} s)"
        row(label, "requests/s", f"{w['rps']:.1f}")
        row(
            label,
            "p50 / p95 / p99 ms",
            f"{w['p50_ms']:.2f} / {w['p95_ms']:.2f} / {w['p99_ms']:.2f}",
        )
        row(label, "errors (non-2xx + socket + timeout)", w["errors"], "0", w["errors"] == 0)
        row(
            label,
            "rows inserted / responses",
            f"{w['rows_inserted']} / {w['requests']}",
            "≥ responses",
            w["rows_inserted"] >= w["requests"] - w["errors"],
        )
        row(
            label,
            "service CPU: cores (user + system) / µs per request",
            f"{w['server_cpu_cores']} ({w['server_cpu_user_cores']} + "
            f"{w['server_cpu_system_cores']}) / {w['server_cpu_us_per_request']}",
        )
        row(
            label,
            "CPU cores: machine busy / service / postgres / wrk / other processes",
            f"{w['machine_busy_cores']} of {results['machine']['nproc']} / "
            f"{w['server_cpu_cores']} / {w['postgres_cpu_cores']} / {w['wrk_cpu_cores']} / "
            f"{w['other_processes_cpu_cores']}",
        )
        r = w["rss"]
        row(
            label,
            "RSS start → end MiB",
            f"{r['start_kib'] / 1024:.1f} → {r['end_kib'] / 1024:.1f} ({r['drift_pct']:+.1f} %)",
        )
    p = results.get("pgbench")
    if p:
        label = f"ceiling (pgbench, {CLIENTS} clients, -M prepared)"
        row(label, "TPS", f"{p['tps']:.1f}")
        row(label, "latency avg ms / failed", f"{p['latency_avg_ms']} / {p['failed']}")
        row(
            label,
            "CPU cores: machine busy / pgbench client",
            f"{p['machine_busy_cores']} of {results['machine']['nproc']} / "
            f"{p['pgbench_cpu_cores']}",
        )
    if w and p:
        ratio = results["ratio"]
        row(
            "sustained vs ceiling",
            "service_rps / pgbench_tps",
            f"{ratio:.2f}",
            "≥ 0.35",
            ratio >= RATIO_TARGET,
        )
    rt = results.get("round_trips")
    if rt:
        for kind, target in (("new_lead", 4), ("replay", 5)):
            each = rt[kind]
            name = kind.replace("_", " ")
            row(f"round trips ({name})", "statements", each["statements"])
            row(
                f"round trips ({name})",
                "round trips incl. BEGIN/COMMIT (asyncpg query log)",
                each["round_trips"],
                f"≤ {target}",
                each["round_trips"] <= target,
            )
            row(
                f"round trips ({name})",
                "round trips on the wire (proxy)",
                each["wire_round_trips"],
                f"≤ {target}",
                each["wire_round_trips"] <= target,
            )
        row(
            "round trips (first request on a new connection)",
            "on the wire",
            rt["cold_new_lead"]["wire_round_trips"],
        )
    soak = results.get("soak")
    if soak:
        r = soak["rss"]
        label = f"soak (wrk, {CLIENTS} conns, {soak['seconds']:g} s)"
        row(
            label,
            "requests/s / errors",
            f"{soak['rps']:.1f} / {soak['errors']}",
            "0 errors",
            soak["errors"] == 0,
        )
        row(
            label,
            "RSS start → end (max) MiB",
            f"{r['start_kib'] / 1024:.1f} → {r['end_kib'] / 1024:.1f} ({r['max_kib'] / 1024:.1f})",
        )
        row(label, "RSS drift", f"{r['drift_pct']:+.2f} %")
    log_facts = results.get("service_log")
    if log_facts:
        row(
            "service log",
            "tracebacks / ERROR lines",
            f"{log_facts['tracebacks']} / {log_facts['error_lines']}",
            "0 / 0",
            log_facts["tracebacks"] == 0 and log_facts["error_lines"] == 0,
        )
    if rt:
        lines += ["", "Wire round trips of one warm new lead and one replay (proxy):", ""]
        for kind in ("new_lead", "replay"):
            for i, flight in enumerate(rt[kind]["wire"], 1):
                lines.append(f"- {kind.replace('_', ' ')} {i}: {flight}")
    prof = results.get("profile")
    if prof:
        lines += ["", "Profile (py-spy, on-CPU samples of the service):", ""]
        from bench import profile

        lines.append(profile.render(prof, top=12))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (default 1)")
    parser.add_argument("--duration", type=float, default=10, help="sustained/pgbench seconds")
    parser.add_argument("--soak", type=float, default=0, help="also a soak run of S seconds")
    parser.add_argument("--count", type=int, default=100, help="sequential measured requests")
    parser.add_argument("--warmup", type=int, default=200, help="sequential warm-up requests")
    parser.add_argument("--json", type=Path, help="write all results as JSON to this file")
    parser.add_argument("--check", action="store_true", help="exit 2 when a target is missed")
    parser.add_argument("--no-access-log", action="store_true", help="pass to uvicorn")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy profile into DIR")
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native")
    parser.add_argument("--py-spy", help="path of py-spy (else found or installed)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.duration <= 0 or args.count < 1:
        parser.error("--workers, --duration and --count must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="leads-bench-"))
    run = Run(args, workdir)
    run.results.update(workers=args.workers, duration_s=args.duration)
    status = 0
    try:
        run.create_database()
        run.machine()
        run.background_load()
        run.round_trips()
        run.start_service()
        run.sequential()
        run.concurrent("cold_pool")
        run.concurrent("warm_pool")
        run.sustained(min(2.0, args.duration), "warmup")
        run.results["sustained"] = run.sustained(args.duration, "sustained")
        run.pgbench(args.duration)
        run.results["ratio"] = round(
            run.results["sustained"]["rps"] / run.results["pgbench"]["tps"], 4
        )
        if args.soak > 0:
            run.results["soak"] = run.sustained(args.soak, "soak")
        if args.profile:
            run.profile(args.profile)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    except BenchError as error:
        log(f"error: {error}")
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.kill_children()
        try:
            run.stop_service()
        finally:
            try:
                run.drop_database()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    if status == 0:
        table = render(run.results)
        print(table)
        print()
        print(f"ratio service_rps / pgbench_tps = {run.results['ratio']:.2f}")
        if args.json:
            args.json.write_text(json.dumps(run.results, indent=2, default=str) + "\n")
            log(f"results written to {args.json}")
        if args.check and "**FAIL**" in table:
            log("some targets were missed (--check)")
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
