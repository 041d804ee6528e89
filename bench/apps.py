"""What a run measures and measures on: the apps (the service with the spec command, the
yardstick), each one uvicorn process group, and the run's own database on the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.load import BenchError
from infrastructure.provisioning import asyncpg_dsn, drop_database, ensure_database, with_database

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STARTUP_TIMEOUT_S = 60
TARGETS = {"service": "web.app:app", "yardstick": "bench.yardstick:app"}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class App:
    """`python -m uvicorn TARGET --host 127.0.0.1 --port P [--workers N]` in its own process
    group; ready when /readyz answers 200 and every worker has started."""

    def __init__(self, name: str, database_url: str, workers: int, workdir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.name, self.workers = name, workers
        self.argv = [sys.executable, "-m", "uvicorn", TARGETS[name], "--host", "127.0.0.1"]
        self.argv += ["--port", str(self.port)]
        if workers > 1:
            self.argv += ["--workers", str(workers)]
        self.command = " ".join(["python", *self.argv[1:]])
        self.env = dict(os.environ, DATABASE_URL=database_url)
        self.log_path = workdir / f"{name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "started"
        return self.process.pid

    def start(self) -> App:
        log(f"starting {self.name}: {self.command}")
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped with its workers, by process group
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._ready() or self._log().count("startup complete") < self.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not start:\n{self._log()[-2000:]}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        for signum, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
                break
        tracebacks = self._log().count("Traceback (most recent call last)")
        if tracebacks:
            log(f"{self.name} logged {tracebacks} traceback(s): {self.log_path}")
        self.process = None


class Database:
    """`leads_bench_<pid>_<hex>` on DATABASE_URL's server (else this machine's), migrated and
    given the example catalog with the `leads` commands a user runs."""

    def __init__(self) -> None:
        self.server_url = asyncpg_dsn(os.environ.get("DATABASE_URL") or SERVER_URL)
        self.name = f"leads_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.url = with_database(self.server_url, self.name)
        self.created = False

    def create(self) -> None:
        try:
            asyncio.run(ensure_database(self.server_url, self.name))
        except (OSError, asyncpg.PostgresError) as error:
            raise BenchError(
                f"cannot create a database on {self.server_url} ({error}); "
                "set DATABASE_URL to a PostgreSQL server on this machine"
            ) from None
        self.created = True
        log(f"database {self.name}")
        for command in (["db", "upgrade"], ["catalog", "apply", "examples/catalog.yaml"]):
            self.leads(*command)

    def leads(self, *argv: str, timeout: float = 120) -> str:
        """`leads ARGV…` (as `python -m cli`) on this database; its stdout."""
        env = dict(os.environ, DATABASE_URL=self.url)
        command = [sys.executable, "-m", "cli", *argv]
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise BenchError(f"leads {' '.join(argv)}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def fetch(self, sql: str, *args: object) -> list[Any]:
        async def on_connection() -> list[Any]:
            connection = await asyncpg.connect(self.url)
            try:
                return list(await connection.fetch(sql, *args))
            finally:
                await connection.close()

        return asyncio.run(on_connection())

    def lead_count(self) -> int:
        return int(self.fetch("SELECT count(*) FROM leads")[0][0])

    def reset(self) -> None:
        """Every load run starts on an empty leads table right after a checkpoint, so none pays
        for another's rows or full-page writes."""
        self.fetch("TRUNCATE leads")
        self.fetch("CHECKPOINT")

    def drop(self) -> None:
        if self.created:
            asyncio.run(drop_database(self.server_url, self.name))
            self.created = False
            log(f"dropped database {self.name}")
