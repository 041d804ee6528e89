"""The load bench/run puts on an app and on PostgreSQL: sequential POSTs on one connection, wrk
with 16 clients, pgbench running the service's own statement for one new lead; and the parsers
of what wrk and pgbench print."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import workload
from bench.procfs import nproc
from infrastructure.repositories import WRITE_LEAD

LUA = Path(__file__).with_name("leads.lua")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
PGBENCH_KEY = "\\set idempotency_key :client_id * 1000000000000000 + random(1, 999999999999999)"


class BenchError(RuntimeError):
    """The run cannot go on (a tool failed, an answer was wrong): one line, no report."""


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def post(connection: http.client.HTTPConnection, body: bytes, accept: str) -> tuple[int, bytes]:
    connection.request("POST", "/api/leads", body, {**workload.HEADERS, "Accept": accept})
    response = connection.getresponse()
    return response.status, response.read()


def sequential(port: int, warmup: int, count: int, key_prefix: str, accept: str) -> dict[str, Any]:
    """`count` new leads one after another on a keep-alive connection, after `warmup` more: the
    wall time of each, from writing the request to having read the whole response."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    for i in range(warmup + count):
        started = time.perf_counter()
        status, answer = post(connection, workload.body(f"{key_prefix}-seq-{i}"), accept)
        if status != 201:
            raise BenchError(f"a new lead got HTTP {status}: {answer[:300]!r}")
        if i >= warmup:
            latencies.append((time.perf_counter() - started) * 1e3)
    connection.close()
    return {f"seq_p{p}_ms": round(percentile(latencies, p), 2) for p in (50, 95, 99)}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """requests, requests/s, latency percentiles (ms) and errors from `wrk --latency`'s output."""
    done = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", out, re.MULTILINE)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if done is None or rps is None:
        raise ValueError(f"wrk printed no summary:\n{out}")
    found: dict[str, Any] = {"requests": int(done.group(1)), "rps": float(rps.group(1))}
    for p, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.MULTILINE):
        found[f"p{p}_ms"] = _ms(value)
    non_2xx = re.search(r"^\s*Non-2xx or 3xx responses: (\d+)", out, re.MULTILINE)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    found["errors"] = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in sockets.groups()) if sockets else 0
    )
    return found


def wrk(port: int, seconds: float, key_prefix: str, accept: str) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise BenchError("wrk not found: apt-get install wrk (bench/run installs it)")
    argv = ["wrk", "-t", str(min(workload.CLIENTS, nproc())), "-c", str(workload.CLIENTS)]
    argv += ["-d", f"{seconds:g}s", "--latency", "--timeout", "10s", "-s", str(LUA)]
    argv += [
        f"http://127.0.0.1:{port}/api/leads",
        "--",
        *workload.wrk_arguments(key_prefix, accept),
    ]
    return parse_wrk(_run(argv, seconds))


def find_pgbench() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
    path = str(found[0]) if found else shutil.which("pgbench")
    if path is None:
        raise BenchError("pgbench not found: apt-get install postgresql-client-15")
    return path


def pgbench_script(row: Mapping[str, object], catalog_version: int) -> tuple[str, dict[str, str]]:
    """The service's own statement (WRITE_LEAD) as a pgbench script, bound to what the service
    bound for `row`, a lead it wrote: a new key per transaction, a fresh lead_id by the server
    (a pgbench variable cannot hold a uuid5), NULLs inlined (a variable cannot be NULL)."""
    values = {**row, "catalog_version": catalog_version}
    sql, variables = WRITE_LEAD.text, {}
    for name in WRITE_LEAD.names:
        parameter = re.compile(rf"(?<![:\w]):{name}\b")
        value = values[name]
        if name == "lead_id":
            sql = parameter.sub("gen_random_uuid()", sql)
        elif value is None:
            sql = parameter.sub("NULL", sql)
        elif name != "idempotency_key":
            variables[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{PGBENCH_KEY}\n{sql};\n", variables


def parse_pgbench(out: str) -> dict[str, Any]:
    tps = re.search(r"^tps = ([\d.]+)", out, re.MULTILINE)
    done = re.search(r"^number of transactions actually processed: (\d+)", out, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", out, re.MULTILINE)
    if tps is None or done is None:
        raise ValueError(f"pgbench printed no tps:\n{out}")
    errors = int(failed.group(1)) if failed else 0
    return {"tps": float(tps.group(1)), "transactions": int(done.group(1)), "errors": errors}


def pgbench(url: str, seconds: float, script: Path, variables: Mapping[str, str]) -> dict[str, Any]:
    argv = [find_pgbench(), "-n", "-M", "prepared", "-c", str(workload.CLIENTS)]
    argv += ["-j", str(nproc()), "-T", str(max(1, round(seconds))), "-f", str(script)]
    argv += [f"-D{name}={value}" for name, value in variables.items()]
    return parse_pgbench(_run([*argv, url], seconds))


def _run(argv: list[str], seconds: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{argv[0]} still running after {seconds + 120:g} s") from error
    if done.returncode != 0:
        raise BenchError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout
