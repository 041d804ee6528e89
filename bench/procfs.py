"""CPU of processes and of the machine, read from Linux's /proc, and the meter of one load run."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg

# The backends of the run's database, also those that come and go during a run (pgbench's),
# autovacuum's included. The WAL writer and checkpointer serve every database of the server, so
# on a shared server they would count other work: they are left out.
_SERVING = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def nproc() -> int:
    return len(os.sched_getaffinity(0))


def parse_stat(text: str) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) from a /proc/PID/stat line; the command name,
    in parentheses, may itself hold spaces and parentheses."""
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_machine(text: str) -> tuple[int, int]:
    """(busy, total) jiffies of the machine from /proc/stat (idle and iowait are not busy)."""
    values = [int(v) for v in text.splitlines()[0].split()[1:]]
    total = sum(values)
    return total - values[3] - values[4], total


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError):  # it exited
        return None


def process_cpu(pid: int) -> float | None:
    found = _stat(pid)
    return None if found is None else found[1]


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its descendants (uvicorn and its workers)."""
    stats = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, found in stats.items():
        if found is not None:
            children.setdefault(found[0], []).append(pid)
    total, queue = 0.0, [root]
    while queue:
        pid = queue.pop()
        total += found[1] if (found := stats.get(pid)) else 0.0
        queue.extend(children.get(pid, []))
    return total


def machine() -> tuple[int, int]:
    return parse_machine(Path("/proc/stat").read_text())


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * nproc() if total else 0.0


def _children_cpu() -> float:
    import resource  # Linux only, as bench/run is: imported where used

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU over one load run: the app's process tree (when given); the PostgreSQL processes
    serving the database, which a thread finds every 0.5 s and reads every 0.1 s (a backend that
    exits with its client, as pgbench's do, counts up to its last reading; one found later counts
    from zero); the load client (wrk, pgbench: children waited for inside the block); the machine.
    """

    def __init__(self, database_url: str, app_pid: int | None = None) -> None:
        self.database_url, self.app_pid = database_url, app_pid
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._ready, self._stop = threading.Event(), threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _now(self) -> tuple[float, tuple[int, int], float, float]:
        app = tree_cpu(self.app_pid) if self.app_pid else 0.0
        return time.monotonic(), machine(), _children_cpu(), app

    def __enter__(self) -> Meter:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = self._now()
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        try:
            asyncio.run(self._poll())
        except BaseException as error:  # raised by __enter__ when it happens before the start
            self._error = error
            self._ready.set()

    async def _poll(self) -> None:
        connection = await asyncpg.connect(self.database_url)
        try:
            next_discovery = 0.0
            while not self._stop.is_set():
                if time.monotonic() >= next_discovery:
                    for row in await connection.fetch(_SERVING):
                        if (cpu := process_cpu(row["pid"])) is not None:
                            self._first.setdefault(row["pid"], 0.0 if self._ready.is_set() else cpu)
                    next_discovery = time.monotonic() + 0.5
                for pid in self._first:
                    if (cpu := process_cpu(pid)) is not None:
                        self._last[pid] = cpu
                self._ready.set()
                self._stop.wait(0.1)
        finally:
            await connection.close()

    def result(self, requests: int, leads: int) -> dict[str, Any]:
        seconds = self._end[0] - self._start[0]
        postgres = sum(self._last[pid] - self._first[pid] for pid in self._last)
        client, app = self._end[2] - self._start[2], self._end[3] - self._start[3]
        others = busy_cores(self._start[1], self._end[1]) - (postgres + client + app) / seconds
        found: dict[str, Any] = {
            "postgres_cpu_us_per_lead": round(postgres / leads * 1e6) if leads else None,
            "postgres_cores": round(postgres / seconds, 2),
            "client_cores": round(client / seconds, 2),
            "other_cores": round(max(0.0, others), 2),
        }
        if self.app_pid:
            found["app_cores"] = round(app / seconds, 2)
            found["cpu_us_per_request"] = round(app / requests * 1e6) if requests else None
        return found
