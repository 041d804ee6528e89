"""One bench/run against a fresh database holding the example catalog: the round trips, the
yardstick answering as the service does, `--pairs` alternating runs of the service, the yardstick
and pgbench, then `leads import`. Every way out (an error, Ctrl-C, SIGTERM, SIGHUP) stops the
apps and drops the database."""

from __future__ import annotations

import csv
import functools
import http.client
import json
import platform
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import load, roundtrips, workload
from bench.apps import ROOT, TARGETS, App, Database, log
from bench.import_summary import parse_summary
from bench.load import BenchError
from bench.procfs import Meter, busy_cores, machine, nproc
from bench.runner import Options

WARMUP_S = 2.0  # wrk before each measured run: the pool opens its connections


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(options: Options) -> tuple[int, dict[str, Any]]:
    """(exit status, results): 0 when every phase ran, 1 on an error, 130 when interrupted."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="leads-bench-"))
    database, apps = Database(), list[App]()
    results: dict[str, Any] = {"options": {k: str(v) for k, v in asdict(options).items()}}
    status = 0
    try:
        _phases(options, database, workdir, apps, results)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        status = 130
    except BenchError as error:
        log(f"error: {error}")
        status = 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # cleanup runs to its end
            signal.signal(signum, signal.SIG_IGN)
        for app in apps:
            app.stop()
        try:
            database.drop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return status, results


def _phases(
    options: Options, database: Database, workdir: Path, apps: list[App], results: dict[str, Any]
) -> None:
    database.create()
    results["machine"] = _machine(database)
    nonce = uuid.uuid4().hex[:8]

    def start(name: str, url: str, workers: int) -> App:
        apps.append(App(name, url, workers, workdir))
        return apps[-1].start()

    log("round trips: each app with a pool behind a proxy that counts them")
    results["round_trips"] = {
        name: roundtrips.count(functools.partial(start, name, workers=1), database.url, name)
        for name in TARGETS
    }
    service = start("service", database.url, options.workers)
    yardstick = start("yardstick", database.url, options.workers)
    results["service_command"] = service.command
    script, variables = _pgbench_script(
        database, _same_answers(database, service, yardstick), workdir
    )
    results["pgbench_script"] = script.read_text()
    before = machine()
    time.sleep(2)
    results["busy_before_cores"] = round(busy_cores(before, machine()), 2)
    results["pairs"] = []
    for i in range(options.pairs):
        order = (service, yardstick) if i % 2 == 0 else (yardstick, service)
        pair: dict[str, Any] = {
            app.name: _measure(app, database, options, f"{nonce}-{i}") for app in order
        }
        pair["order"] = [app.name for app in order]
        pair["pgbench"] = _ceiling(database, options.duration, script, variables)
        results["pairs"].append(pair)
        log(
            f"pair {i + 1}: service {pair['service']['rps']:.0f} requests/s, yardstick "
            f"{pair['yardstick']['rps']:.0f}, pgbench {pair['pgbench']['tps']:.0f} tps"
        )
    if options.import_rows:
        results["import"] = _import(database, options.import_rows, nonce, workdir)


def _machine(database: Database) -> dict[str, Any]:
    names = ("server_version", "synchronous_commit", "fsync")
    rows = database.fetch("SELECT name, setting FROM pg_settings WHERE name = ANY($1)", names)
    git = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": nproc(),
        "postgresql": {row["name"]: row["setting"] for row in rows},
        "python": platform.python_version(),
        "commit": commit or "unknown",
    }


def _post(app: App, body: bytes) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    try:
        status, answer = load.post(connection, body, "application/json")
    finally:
        connection.close()
    return status, json.loads(answer)


def _same_answers(database: Database, service: App, yardstick: App) -> str:
    """Checks that the yardstick answers as the service: a lead posted to one app is created and,
    posted to the other, replayed with the same body (a derived key only matches when both
    normalized email and phone alike). Returns the key of a lead the service created."""
    sql = "SELECT source_id FROM sources WHERE source_key = $1"
    source_id = database.fetch(sql, workload.SOURCE_KEY)[0]["source_id"]
    key = f"same-{uuid.uuid4().hex[:8]}"
    with_key: dict[str, object] = dict(workload.posted(key))
    derived = {k: v for k, v in with_key.items() if k != "idempotency_key"}
    by_id = {k: v for k, v in with_key.items() if k != "source_key"}
    by_id.update(source_id=source_id, idempotency_key=f"{key}-by-id")
    for first, second, fields in (
        (service, yardstick, with_key),
        (yardstick, service, derived),
        (yardstick, service, by_id),
    ):
        body = json.dumps(fields).encode()
        created, replayed = _post(first, body), _post(second, body)
        if created[0] != 201 or replayed != (200, {**created[1], "replayed": True}):
            raise BenchError(f"{first.name} answered {created}, then {second.name} {replayed}")
    return key


def _pgbench_script(database: Database, key: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    """pgbench's script, from what the service bound for the lead with `key`."""
    row = database.fetch("SELECT * FROM leads WHERE idempotency_key = $1", key)[0]
    version = database.fetch("SELECT version FROM catalog_version")[0][0]
    script, variables = load.pgbench_script(dict(row), version)
    path = workdir / "write_lead.sql"
    path.write_text(script)
    return path, variables


def _measure(app: App, database: Database, options: Options, label: str) -> dict[str, Any]:
    database.reset()
    key_prefix = f"{label}-{app.name}"
    found = load.sequential(app.port, options.warmup, options.requests, key_prefix, options.accept)
    load.wrk(app.port, min(WARMUP_S, options.duration), f"{key_prefix}-warm", options.accept)
    database.reset()
    with Meter(database.url, app.pid) as meter:
        found.update(load.wrk(app.port, options.duration, f"{key_prefix}-wrk", options.accept))
    found.update(meter.result(found["requests"], database.lead_count()))
    return found


def _ceiling(
    database: Database, seconds: float, script: Path, variables: dict[str, str]
) -> dict[str, Any]:
    database.reset()
    with Meter(database.url) as meter:
        found = load.pgbench(database.url, seconds, script, variables)
    found.update(meter.result(found["transactions"], database.lead_count()))
    return found


def _import(database: Database, rows: int, nonce: str, workdir: Path) -> dict[str, Any]:
    path = workdir / "leads.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(workload.posted("")))
        writer.writeheader()
        writer.writerows(workload.posted(f"{nonce}-import-{i}") for i in range(rows))
    database.reset()
    log(f"leads import {path.name} ({rows} rows)")
    printed = database.leads("import", str(path), timeout=max(600, rows / 20))
    summary = parse_summary(printed)
    if summary is None:
        raise BenchError(f"leads import printed no summary line: {printed.strip()[-300:]!r}")
    return asdict(summary)
