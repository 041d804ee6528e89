"""Checks that are processes needing nothing from the rest of the suite — lint, types, domain
coverage, collection without POSIX, the compose-like server — start when collection ends, one
after another at a low CPU priority, so they run on what the other tests leave idle (most of
them wait on servers and sockets); each test waits for the result of its own.

A test module lists its checks in `BACKGROUND`, keyed by the name of the test (with its
parameters) or of the fixture that reads the result, with `result(request)`. A check runs only
when a test that needs it is collected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import ROOT

TIMEOUT_S = 900


@dataclass(frozen=True)
class Check:
    """Each step's command in the project's root, the next one only when the one before
    succeeded; `{tmp}` in a step is a directory of the run's own. `env` makes the environment
    from that directory (default: the suite's)."""

    steps: Sequence[Sequence[str]]
    env: Callable[[Path], Mapping[str, str]] | None = None

    def run(self, tmp: Path, started: Callable[[subprocess.Popen[str]], None]) -> Outcome:
        env = dict(self.env(tmp)) if self.env is not None else None
        outcome = Outcome(0, "", "")
        for step in self.steps:
            argv = [part.format(tmp=tmp) for part in step]
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                creationflags=_LOW,
            )
            started(process)
            try:
                stdout, stderr = process.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            outcome = Outcome(process.returncode, stdout, stderr)
            if outcome.returncode != 0:
                break
        return outcome


def python_m(*argv: str) -> tuple[str, ...]:
    """`python -m …` with the suite's interpreter."""
    return (sys.executable, "-m", *argv)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


# A low priority: the other tests' processes come first, and still a check that waits for
# its own server (the compose-like one) is not starved past its deadlines. Windows: a priority
# class at creation; POSIX: nice 10 right after the fork (below), before the child has started
# anything of its own.
if sys.platform == "win32":
    _LOW = subprocess.BELOW_NORMAL_PRIORITY_CLASS
else:
    _LOW = 0
NICE = 10


def _lower_priority(process: subprocess.Popen[str]) -> None:
    if sys.platform != "win32":
        with contextlib.suppress(OSError):  # it has already ended
            os.setpriority(os.PRIO_PROCESS, process.pid, NICE)


@dataclass
class Runner:
    """Runs the checks in order on one thread; `result` waits for one of them."""

    checks: dict[tuple[str, str], Check]
    _tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="leads-static-")))
    _done: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    _ready: threading.Condition = field(default_factory=threading.Condition)
    _current: subprocess.Popen[str] | None = None
    _stopped: bool = False

    def start(self) -> None:
        threading.Thread(target=self._run_all, name="static-checks", daemon=True).start()

    def _run_all(self) -> None:
        for name, check in self.checks.items():
            if self._stopped:
                return
            try:
                outcome = check.run(self._tmp, self._started)
            except Exception as error:  # reported by the test that waits for it
                outcome = Outcome(-1, "", f"the check could not run: {error!r}")
            with self._ready:
                self._done[name] = outcome
                self._ready.notify_all()

    def _started(self, process: subprocess.Popen[str]) -> None:
        self._current = process
        _lower_priority(process)
        if self._stopped:
            process.kill()

    def result(self, name: tuple[str, str]) -> Outcome:
        with self._ready:
            if not self._ready.wait_for(lambda: name in self._done, timeout=2 * TIMEOUT_S):
                raise TimeoutError(f"the static check {name} did not end")
            return self._done[name]

    def stop(self) -> None:
        """Kills what still runs (an interrupted run) and removes the run's directory."""
        self._stopped = True
        current = self._current
        if current is not None and current.poll() is None:
            current.kill()
        shutil.rmtree(self._tmp, ignore_errors=True)


RUNNER = pytest.StashKey[Runner]()


def start(session: pytest.Session) -> None:
    """Starts the checks of the collected tests (the `pytest_collection_finish` hook)."""
    if session.config.option.collectonly:
        return
    checks: dict[tuple[str, str], Check] = {}
    for item in session.items:
        module = getattr(item, "module", None)
        listed: Mapping[str, Check] = getattr(module, "BACKGROUND", {})
        for name in (item.name, *getattr(item, "fixturenames", ())):
            if name in listed:
                checks[(module.__name__, name)] = listed[name]
    if checks:
        runner = Runner(checks)
        session.config.stash[RUNNER] = runner
        runner.start()


def stop(session: pytest.Session) -> None:
    runner = session.config.stash.get(RUNNER, None)
    if runner is not None:
        runner.stop()


def result(request: pytest.FixtureRequest) -> Outcome:
    """The outcome of the check of the test, or fixture, that asks."""
    name = request.fixturename or request.node.name  # a fixture's request, else the test's
    return request.config.stash[RUNNER].result((request.module.__name__, name))
