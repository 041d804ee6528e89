"""CPU of everything a load run involves, measured over the run: the machine, the service, the
PostgreSQL processes serving the run, and the load's own client (wrk, pgbench, leads import)."""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from typing import Any

import asyncpg

from bench import procfs

# The run's backends, also those that connect and exit during the run (pgbench's), and the
# server's background processes (WAL writer, checkpointer…: datname is NULL), which serve the
# whole server; autovacuum and parallel workers count when they work on this database.
_SERVING = (
    "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
    "AND (datname = current_database() OR datname IS NULL)"
)


class PostgresCpu:
    """CPU seconds of the PostgreSQL processes serving a database while a load runs.

    A background thread finds them in pg_stat_activity every `discover` seconds and reads their
    CPU from /proc every `interval` seconds, keeping each process's last reading, so backends
    that exit with their client (pgbench's) count up to at most `interval` before their exit.
    Processes found after the start count from their own start. None when the server is not on
    this machine (its processes are not in /proc).
    """

    def __init__(self, database_url: str, interval: float = 0.1, discover: float = 0.5) -> None:
        self.database_url, self.interval, self.discover = database_url, interval, discover
        self._baseline: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> PostgresCpu:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def seconds(self) -> float | None:
        if not self._last:
            return None
        return sum(self._last[pid] - self._baseline[pid] for pid in self._last)

    def _read(self) -> None:
        for pid in self._baseline:
            cpu = procfs.process_cpu(pid)
            if cpu is not None:
                self._last[pid] = cpu[0] + cpu[1]

    def _main(self) -> None:
        try:
            asyncio.run(self._poll())
        except BaseException as error:  # reported by __enter__ when it happens before the start
            self._error = error
            self._ready.set()

    async def _poll(self) -> None:
        connection = await asyncpg.connect(self.database_url)
        try:
            first, next_discovery = True, 0.0
            while True:
                if time.monotonic() >= next_discovery:
                    for row in await connection.fetch(_SERVING):
                        pid = row["pid"]
                        if pid not in self._baseline and (cpu := procfs.process_cpu(pid)):
                            self._baseline[pid] = cpu[0] + cpu[1] if first else 0.0
                    next_discovery = time.monotonic() + self.discover
                self._read()
                if first:
                    first = False
                    self._ready.set()
                if self._stop.wait(self.interval):
                    self._read()
                    return
        finally:
            await connection.close()


def _children_cpu() -> float:
    """CPU seconds of this process's children that have exited and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class LoadMeter:
    """Wraps one load run. `client` names the load generator in the result's keys; it is measured
    as this process's waited-for children, so it must exit inside the `with` block."""

    def __init__(self, database_url: str, client: str, service_pid: int | None = None) -> None:
        self.client, self.service_pid = client, service_pid
        self._postgres = PostgresCpu(database_url)
        self._machine = (0, 0)
        self._machine_busy_cores = 0.0
        self._children = 0.0
        self._service = (0.0, 0.0)

    def __enter__(self) -> LoadMeter:
        self._postgres.__enter__()
        if self.service_pid is not None:
            self._service = procfs.tree_cpu(self.service_pid)
        self._machine, self._children = procfs.machine_cpu(), _children_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self._machine_busy_cores = procfs.busy_cores(self._machine, procfs.machine_cpu())
        self._children = _children_cpu() - self._children
        if self.service_pid is not None:
            after = procfs.tree_cpu(self.service_pid)
            self._service = (after[0] - self._service[0], after[1] - self._service[1])
        self._postgres.__exit__()

    def result(self, seconds: float, leads: int, requests: int | None = None) -> dict[str, Any]:
        """CPU in cores over `seconds`, and per lead (rows inserted) or per request."""

        def cores(cpu: float) -> float:
            return round(cpu / seconds, 2) if seconds else 0.0

        def per(cpu: float | None, n: int | None) -> int | None:
            return round(cpu / n * 1e6) if cpu is not None and n else None

        postgres = self._postgres.seconds()
        out: dict[str, Any] = {
            "machine_busy_cores": round(self._machine_busy_cores, 2),
            "postgres_cpu_cores": cores(postgres) if postgres is not None else None,
            "postgres_cpu_us_per_lead": per(postgres, leads),
            f"{self.client}_cpu_cores": cores(self._children),
            f"{self.client}_cpu_us_per_lead": per(self._children, leads),
        }
        known = (postgres or 0.0) + self._children
        if self.service_pid is not None:
            user, system = self._service
            out.update(
                server_cpu_cores=cores(user + system),
                server_cpu_user_cores=cores(user),
                server_cpu_system_cores=cores(system),
                server_cpu_us_per_request=per(user + system, requests),
            )
            known += user + system
        out["other_processes_cpu_cores"] = round(self._machine_busy_cores - cores(known), 2)
        return out
