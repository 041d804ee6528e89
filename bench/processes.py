"""Child processes of a run (wrk, pgbench, the clients, leads import, py-spy), tracked so that an
interrupt or an error ends them all."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from bench.console import BenchError

ROOT = Path(__file__).resolve().parent.parent


class Children:
    def __init__(self) -> None:
        self._running: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        try:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as error:
            raise BenchError(f"cannot run {argv[0]}: {error}") from error
        self._running.append(process)
        return process

    def finish(self, process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
        """Waits for a started child: (exit status, stdout, stderr); killed past `timeout`."""
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise BenchError(f"{process.args!r} still running after {timeout:g} s") from error
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            self._running.remove(process)
        return process.returncode, out, err

    def run(self, argv: list[str], timeout: float) -> str:
        """Runs a child to completion; its stdout, or BenchError if it failed."""
        status, out, err = self.finish(self.start(argv), timeout)
        if status != 0:
            raise BenchError(f"{argv[0]} failed ({status}): {err.strip()[-2000:]}")
        return out

    def kill_all(self) -> None:
        for process in list(self._running):
            if process.poll() is None:
                process.kill()
                process.wait()
