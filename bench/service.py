"""The service under test: started with the spec command, ready when /readyz answers 200 and every
worker has started, stopped by process group (SIGTERM, then SIGKILL), its log checked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.console import BenchError, log
from bench.processes import ROOT
from infrastructure.local_postgres import free_port

STARTUP_TIMEOUT_S = 60


class Service:
    def __init__(
        self, database_url: str, workdir: Path, workers: int, access_log: bool = True
    ) -> None:
        self.port = free_port()
        self.workers = workers
        argv = [sys.executable, "-m", "uvicorn", "web.app:app", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        if not access_log:
            argv.append("--no-access-log")
        self.argv = argv
        self.command = " ".join(["python", *argv[1:]])
        self.env = dict(os.environ, DATABASE_URL=database_url)
        self.log_path = workdir / "service.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("the service is not running")
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        log(f"starting: {self.command}")
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its workers
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._ready():
            if self.process.poll() is not None:
                raise BenchError(f"the service exited ({self.process.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"/readyz not 200 within {STARTUP_TIMEOUT_S} s:\n{self.tail()}")
            time.sleep(0.1)
        # Each uvicorn worker answers /readyz once it is up: give them all time to boot.
        while self._log().count("Application startup complete") < self.workers:
            if time.monotonic() > deadline:
                raise BenchError(f"not all {self.workers} workers started:\n{self.tail()}")
            time.sleep(0.1)
        log(f"service ready on port {self.port} (pid {self.pid})")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("/readyz"), timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self._log().splitlines()[-lines:])

    def stop(self) -> dict[str, Any] | None:
        """Stops the service; what its log shows (tracebacks, ERROR lines), None if never run."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None
        log("service stopped")
        text = self._log()
        return {
            "tracebacks": text.count("Traceback (most recent call last)"),
            "error_lines": sum(1 for line in text.splitlines() if " ERROR " in line),
        }

    def _signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
