"""Lint, formatting, types (for this platform and Windows, or Linux on Windows) and domain
coverage, as tests: the README's one test command (`uv run pytest -q`) covers them."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.static import background
from tests.static.background import Check, python_m
from tests.support import ROOT

# These run in the background from the end of collection (background.py).
# The platform the suite runs on, and the other family: Windows from POSIX, Linux from Windows
# (CI's matrix runs the suite on Linux, Windows and macOS, so each platform is checked there).
PLATFORMS = (sys.platform, "linux" if sys.platform == "win32" else "win32")
# These run the CLI and the settings in subprocesses, which coverage does not follow: they
# cover nothing here, in a third of the time.
SUBPROCESS_ONLY = ("test_cli_verbs", "test_settings_errors", "test_settings_env_example")
COVERAGE_DATA = "--data-file={tmp}/.coverage"
BACKGROUND = {
    "test_ruff_check": Check([python_m("ruff", "check", "--no-cache", ".")]),
    "test_ruff_format": Check([python_m("ruff", "format", "--check", "--no-cache", ".")]),
    **{
        f"test_mypy_strict[{platform}]": Check(
            [python_m("mypy", "--platform", platform, "--cache-dir", f".mypy_cache/{platform}")]
        )
        for platform in PLATFORMS
    },
    "test_mypy_strict_bench_on_linux": Check(
        [python_m("mypy", "--platform", "linux", "--cache-dir", ".mypy_cache/linux", "bench")]
    ),
    "test_unit_tests_cover_every_branch_of_domain": Check(
        [
            python_m(
                "coverage",
                "run",
                "--branch",
                "--source=domain",
                COVERAGE_DATA,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-n",
                "0",  # one process: coverage follows no xdist worker
                "tests/unit",
                *(f"--ignore=tests/unit/{name}.py" for name in SUBPROCESS_ONLY),
            ),
            python_m("coverage", "report", COVERAGE_DATA, "--show-missing", "--fail-under=95"),
        ]
    ),
}


def test_ruff_check(request: pytest.FixtureRequest) -> None:
    outcome = background.result(request)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr


def test_ruff_format(request: pytest.FixtureRequest) -> None:
    outcome = background.result(request)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr


@pytest.mark.parametrize("platform", PLATFORMS)
def test_mypy_strict(platform: str, request: pytest.FixtureRequest) -> None:
    """Every package of pyproject's [tool.mypy] `files`, as each platform's stubs see it."""
    outcome = background.result(request)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr


def test_mypy_strict_bench_on_linux(request: pytest.FixtureRequest) -> None:
    """bench/ drives /proc, process groups and signals: it runs (and is checked) on Linux only,
    and refuses elsewhere with one line."""
    outcome = background.result(request)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr


def test_unit_tests_cover_every_branch_of_domain(request: pytest.FixtureRequest) -> None:
    """The unit suite under coverage, then the report (which fails under 95 %)."""
    outcome = background.result(request)
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-3000:]


def test_tracked_text_files_are_lf() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        [git, "ls-files", "--eol"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    crlf = [line for line in listing.splitlines() if "crlf" in line.split("\t")[0]]
    assert crlf == [], "files with CRLF line endings (.gitattributes wants LF):\n" + "\n".join(crlf)
    assert "* text=auto eol=lf" in (ROOT / ".gitattributes").read_text(encoding="utf-8")
