"""The whole suite collects where POSIX-only modules, functions and signals do not exist, as on
Windows: a test that needs them imports them inside itself, behind a skip that says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.static import background
from tests.static.background import Check, python_m

POSIX_ONLY_MODULES = ("fcntl", "pty", "termios", "resource", "grp", "pwd")
POSIX_ONLY_OS = ("sysconf", "killpg", "getpgid", "setsid", "fork", "getuid", "geteuid")
POSIX_ONLY_SIGNALS = ("SIGSTOP", "SIGCONT", "SIGKILL", "SIGHUP", "SIGUSR1", "SIGQUIT", "SIGCHLD")

# Run at start-up of every Python process that has its directory on PYTHONPATH.
SITECUSTOMIZE = f"""
import os, signal, sys
from importlib.abc import MetaPathFinder


class _NotOnWindows(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in {POSIX_ONLY_MODULES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


for _name in {POSIX_ONLY_MODULES!r}:
    sys.modules.pop(_name, None)
sys.meta_path.insert(0, _NotOnWindows())
for _owner, _names in ((os, {POSIX_ONLY_OS!r}), (signal, {POSIX_ONLY_SIGNALS!r})):
    for _name in _names:
        if hasattr(_owner, _name):
            delattr(_owner, _name)
"""


def without_posix(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    path = [str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def test_the_environment_lacks_what_windows_lacks(tmp_path: Path) -> None:
    checks = [
        *(f"import {module}" for module in POSIX_ONLY_MODULES),
        *(f"import os; os.{name}" for name in POSIX_ONLY_OS),
        *(f"import signal; signal.{name}" for name in POSIX_ONLY_SIGNALS),
    ]
    script = "\n".join(
        f"try:\n    {check}\nexcept (ImportError, AttributeError):\n    pass\n"
        f"else:\n    print({check!r})"
        for check in checks
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=without_posix(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "", f"still available:\n{result.stdout}"


BACKGROUND = {
    "test_the_suite_collects_without_posix_only_modules": Check(
        [python_m("pytest", "--collect-only", "-q", "-p", "no:cacheprovider")], env=without_posix
    )
}


def test_the_suite_collects_without_posix_only_modules(request: pytest.FixtureRequest) -> None:
    outcome = background.result(request)  # run in the background (background.py)
    summary = outcome.stdout.strip().splitlines()[-1:] or [outcome.stderr]
    assert outcome.returncode == 0, outcome.stdout[-4000:] + outcome.stderr[-2000:]
    assert "error" not in summary[0], summary
