"""Lint, formatting, types on every platform and domain coverage, as tests: the README's one
test command (`uv run pytest -q`) covers them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff_check() -> None:
    result = run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_mypy_strict(platform: str) -> None:
    """Every package of pyproject's [tool.mypy] `files`, as each platform's stubs see it."""
    result = run("mypy", "--platform", platform, "--cache-dir", f".mypy_cache/{platform}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_bench_on_linux() -> None:
    """bench/ drives /proc, process groups and signals: it runs (and is checked) on Linux only,
    and refuses elsewhere with one line."""
    result = run("mypy", "--platform", "linux", "--cache-dir", ".mypy_cache/linux", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


SUBPROCESS_ONLY = ("test_cli_verbs", "test_settings_errors", "test_settings_env_example")


def test_unit_tests_cover_every_branch_of_domain(tmp_path: Path) -> None:
    data = str(tmp_path / ".coverage")
    tests = run(
        "coverage",
        "run",
        "--branch",
        "--source=domain",
        f"--data-file={data}",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/unit",
        # These run the CLI and the settings in subprocesses, which coverage does not follow:
        # they cover nothing here, in a third of the time.
        *(f"--ignore=tests/unit/{name}.py" for name in SUBPROCESS_ONLY),
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    report = run("coverage", "report", f"--data-file={data}", "--show-missing", "--fail-under=95")
    assert report.returncode == 0, report.stdout + report.stderr


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
