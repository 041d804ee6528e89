"""A server that refuses our credentials is said in one line — the URL tried (password hidden)
and the fix — by `leads`, by `python -m pytest` and by `python -m uvicorn web.app:app`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest

from infrastructure.database_problems import redact_url
from tests.support import ROOT, running_service

PASSWORD = f"pw-{uuid.uuid4().hex[:10]}"
CAUSE = "PostgreSQL refused the user name or password at "
FIX = ": set DATABASE_URL to a user and password that server accepts, or stop that server"


@pytest.fixture(scope="module")
def refused_url(server_url: str) -> str:
    """The test server with a role it does not have."""
    parts = urlsplit(server_url)
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    return f"postgresql://{role}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}/postgres"


def expected_line(url: str) -> str:
    return CAUSE + redact_url(url) + FIX


def run(argv: list[str], url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["db", "current"],
        ["db", "setup"],
        ["catalog", "check"],
        ["serve", "--port", "0"],
    ],
    ids=" ".join,
)
def test_leads_says_it_in_one_line_and_exits_2(refused_url: str, command: list[str]) -> None:
    result = run([sys.executable, "-m", "cli", *command], refused_url)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert result.stderr.splitlines()[-1] == "leads: " + expected_line(refused_url)
    assert "Traceback" not in output
    assert PASSWORD not in output


def test_pytest_stops_at_the_server_with_one_line(refused_url: str) -> None:
    test_file = "tests/integration/test_schema.py"
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file], refused_url
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert output.count(expected_line(refused_url)) == 1, output
    assert "Traceback" not in output
    assert PASSWORD not in output


def test_uvicorn_starts_and_logs_one_warning_line(refused_url: str) -> None:
    with running_service(refused_url, ready_path="/healthz") as service:
        deadline = time.monotonic() + 30
        while expected_line(refused_url) not in service.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        logs = service.logs()
    warnings = [line for line in logs.splitlines() if expected_line(refused_url) in line]
    assert len(warnings) == 1, logs
    assert " WARNING leads.web " in warnings[0]
    assert PASSWORD not in logs
