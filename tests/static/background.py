"""Checks that are processes needing nothing from the rest of the suite — lint, types, domain
coverage, collection without POSIX, the compose-like server — start when collection ends, once
per run, one after another at a low CPU priority, so they run on what the other tests leave
idle (most of them wait on servers and sockets); each test, in whichever process runs it,
waits for the result of its own.

A test module lists its checks in `BACKGROUND`, keyed by the name of the test (with its
parameters) or of the fixture that reads the result, with `result(request)`. A check runs only
when a test that needs it is collected. Checks are known by the module's path (relative to the
root, as in test ids), the same in every process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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


class Runner:
    """Runs the checks in order on one thread of the process that owns the run (the only
    process, or xdist's controller); each outcome is written to a file of the run's directory,
    where a test in any process waits for its own (`result`)."""

    def __init__(self, checks: dict[tuple[str, str], Check], directory: Path) -> None:
        self.checks = checks
        self.directory = directory
        self._current: subprocess.Popen[str] | None = None
        self._stopped = False

    def start(self) -> None:
        threading.Thread(target=self._run_all, name="static-checks", daemon=True).start()

    def _run_all(self) -> None:
        for name, check in self.checks.items():
            if self._stopped:
                return
            try:
                outcome = check.run(self.directory, self._started)
            except Exception as error:  # reported by the test that waits for it
                outcome = Outcome(-1, "", f"the check could not run: {error!r}")
            written = _outcome_path(self.directory, name)
            partial = written.with_suffix(".partial")
            partial.write_text(json.dumps(dataclasses.astuple(outcome)), encoding="utf-8")
            partial.replace(written)

    def _started(self, process: subprocess.Popen[str]) -> None:
        self._current = process
        _lower_priority(process)
        if self._stopped:
            process.kill()

    def stop(self) -> None:
        """Kills what still runs (an interrupted run)."""
        self._stopped = True
        current = self._current
        if current is not None and current.poll() is None:
            current.kill()


def _outcome_path(directory: Path, name: tuple[str, str]) -> Path:
    return directory / (urllib.parse.quote("::".join(name), safe="") + ".json")


def checks_of(nodeids: Iterable[str]) -> dict[tuple[str, str], Check]:
    """The checks the collected tests need. A key naming a test runs when that test (with its
    parameters) is collected; any other key (a fixture's name) when a test of its module is."""
    names_by_module: dict[str, set[str]] = {}
    for nodeid in nodeids:
        module, _, name = nodeid.partition("::")
        names_by_module.setdefault(module, set()).add(name)
    checks: dict[tuple[str, str], Check] = {}
    for module, names in names_by_module.items():
        imported = importlib.import_module(module.removesuffix(".py").replace("/", "."))
        listed: Mapping[str, Check] = getattr(imported, "BACKGROUND", {})
        for key, check in listed.items():
            if key in names or not key.startswith("test_"):
                checks[(module, key)] = check
    return checks


def start(config: pytest.Config, nodeids: Iterable[str]) -> None:
    """Starts the checks of the collected tests, once per run, in the process that owns it."""
    if RUNNER in config.stash or config.option.collectonly:
        return
    checks = checks_of(nodeids)
    if checks:
        runner = Runner(checks, directory(config))
        config.stash[RUNNER] = runner
        runner.start()


def stop(config: pytest.Config) -> None:
    runner = config.stash.get(RUNNER, None)
    if runner is not None:
        runner.stop()


def result(request: pytest.FixtureRequest) -> Outcome:
    """The outcome of the check of the test, or fixture, that asks."""
    name = request.fixturename or request.node.name  # a fixture's request, else the test's
    module = request.path.relative_to(request.config.rootpath).as_posix()
    path = _outcome_path(directory(request.config), (module, name))
    deadline = time.monotonic() + 2 * TIMEOUT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the static check {name} did not end")
        time.sleep(0.1)
    return Outcome(*json.loads(path.read_text(encoding="utf-8")))


RUNNER = pytest.StashKey[Runner]()
DIRECTORY_KEY = "leads_background_dir"


def directory(config: pytest.Config) -> Path:
    """The run's directory of outcomes: the owner's, handed to each xdist worker."""
    workerinput: dict[str, str] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        return Path(workerinput[DIRECTORY_KEY])
    if _OWN_DIRECTORY not in config.stash:
        config.stash[_OWN_DIRECTORY] = Path(tempfile.mkdtemp(prefix="leads-static-"))
    return config.stash[_OWN_DIRECTORY]


_OWN_DIRECTORY = pytest.StashKey[Path]()


def remove_directory(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_DIRECTORY, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)
