"""A database the operator must fix: 503 with Retry-After for clients, a reason on /readyz,
one warning a minute per cause in the log, and one line plus exit 2 on the command line."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from cli.main import main
from infrastructure.database_problems import redact_url
from infrastructure.provisioning import with_database
from infrastructure.settings import Settings
from tests.support import ROOT
from web.app import create_app

REQUESTS = 5


@asynccontextmanager
async def client_for(url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=url, db_pool_size=2, db_timeout_s=3.0)
    app = create_app(lambda: settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def counts(metrics: str) -> dict[str, float]:
    """leads_ingest_requests_total summed by outcome."""
    totals = {"unavailable": 0.0, "failed": 0.0}
    for outcome, value in re.findall(
        r'^leads_ingest_requests_total\{.*outcome="(\w+)"\} (\S+)$', metrics, re.MULTILINE
    ):
        totals[outcome] = totals.get(outcome, 0.0) + float(value)
    return totals


def missing_database(server_url: str) -> str:
    return with_database(server_url, f"leads_missing_{uuid.uuid4().hex[:8]}")


async def assert_unavailable_with(url: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    lead = {"source_id": 1, "email": "misconfigured@example.com"}
    with caplog.at_level(logging.INFO):
        async with client_for(url) as client:
            counted_before = counts((await client.get("/metrics")).text)
            posts = [await client.post("/api/leads", json=lead) for _ in range(REQUESTS)]
            ready = [await client.get("/readyz") for _ in range(REQUESTS)]
            counted = counts((await client.get("/metrics")).text)

    for response in posts:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.json()["error"]["details"] == {}  # clients are not told why
    for response in ready:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["details"]["reason"] == reason
    assert counted["unavailable"] - counted_before["unavailable"] == REQUESTS
    assert counted["failed"] == counted_before["failed"]

    records = [r for r in caplog.records if r.name.startswith("leads")]
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # 10 failed requests, one cause, one line


async def test_a_database_that_does_not_exist(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = missing_database(server_url)
    await assert_unavailable_with(url, "database_missing", caplog)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "the database does not exist at " + redact_url(url) in line
    assert "create it, or set DATABASE_URL" in line


@pytest.fixture
def empty_database(new_database: Callable[[], str]) -> str:
    """A database that exists and holds nothing: `leads db upgrade` never ran."""
    return new_database()


async def test_a_database_that_was_never_migrated(
    empty_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    await assert_unavailable_with(empty_database, "schema_not_migrated", caplog)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "run `leads db upgrade`" in line


async def test_nothing_listening(caplog: pytest.LogCaptureFixture) -> None:
    await assert_unavailable_with("postgresql://postgres@127.0.0.1:1/leads", "unreachable", caplog)


# --- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [("db", "upgrade"), ("db", "current"), ("catalog", "export"), ("catalog", "check")],
)
def test_commands_on_a_missing_database_print_one_line_and_exit_2(
    server_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    url = missing_database(server_url)
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err == (
        f"leads: the database does not exist at {redact_url(url)}: create it, or set "
        "DATABASE_URL to an existing database\n"
    )


@pytest.mark.parametrize("argv", [("catalog", "export"), ("catalog", "check")])
def test_catalog_commands_on_an_unmigrated_database_say_to_migrate(
    empty_database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    url = empty_database
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(list(argv)) == 2
    assert capsys.readouterr().err == (
        f"leads: the database schema is not migrated at {redact_url(url)}: run `leads db upgrade`\n"
    )


def test_serve_on_a_missing_database_prints_one_line_and_exits_2(server_url: str) -> None:
    url = missing_database(server_url)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--port", "1"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"leads: the database does not exist at {redact_url(url)}: create it, or set "
        "DATABASE_URL to an existing database\n"
    )
