"""A server that wants a password the service does not have: 503 and a reason, not 500s.

The test's own cluster is migrated with trust authentication, then switched to password
authentication (scram-sha-256) for TCP connections, as a managed PostgreSQL would be.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import pytest

from cli.main import main
from infrastructure.local_postgres import LocalPostgres
from tests.faults.harness import (
    DATABASE,
    client_for,
    lead_payload,
    prepare_database,
    running_service,
    unique_keys,
)
from tests.support import CatalogSource

pytestmark = pytest.mark.faults

# The request fails before its source is looked up.
ANY_SOURCE = CatalogSource(1, "any-key", 1, 1, 1, "any")
PASSWORD = "the-right-one"
WRONG = "not-the-password"


async def require_password(cluster: LocalPostgres) -> None:
    connection = await asyncpg.connect(cluster.url, timeout=10)
    try:
        await connection.execute(f"ALTER ROLE postgres PASSWORD '{PASSWORD}'")
        hba = cluster.data_dir / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


def url_with(cluster: LocalPostgres, password: str | None) -> str:
    credentials = "postgres" if password is None else f"postgres:{password}"
    return f"postgresql://{credentials}@127.0.0.1:{cluster.port}/{DATABASE}"


@pytest.fixture
def locked_cluster(cluster: LocalPostgres) -> LocalPostgres:
    cluster.start()
    source = asyncio.run(prepare_database(cluster))
    assert source.source_key is not None
    asyncio.run(require_password(cluster))
    return cluster


@pytest.mark.parametrize("password", [WRONG, None], ids=["wrong-password", "no-password"])
async def test_the_service_answers_503_with_the_reason_and_logs_one_line(
    locked_cluster: LocalPostgres, tmp_path: Path, password: str | None
) -> None:
    url = url_with(locked_cluster, password)
    with running_service(tmp_path, url) as service:
        async with client_for(service) as client:
            posts = [
                await client.post("/api/leads", json=lead_payload(ANY_SOURCE, key))
                for key in unique_keys(10)
            ]
            ready = await client.get("/readyz")
        logs = service.logs()

    assert {p.status_code for p in posts} == {503}
    assert all(p.headers["retry-after"] == "1" for p in posts)
    assert {p.json()["error"]["code"] for p in posts} == {"service_unavailable"}
    assert ready.status_code == 503
    assert ready.json()["error"]["details"] == {"reason": "authentication_failed"}

    assert "Traceback" not in logs and " ERROR " not in logs
    lines = [line for line in logs.splitlines() if "WARNING" in line and "leads.web" in line]
    assert len(lines) == 1, lines
    shown = url if password is None else url.replace(password, "***")
    assert f"PostgreSQL refused the user name or password at {shown}" in lines[0]
    assert WRONG not in logs and PASSWORD not in logs


def test_the_command_line_says_why_and_exits_2(
    locked_cluster: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DATABASE_URL", url_with(locked_cluster, WRONG))
    for argv in (["db", "upgrade"], ["db", "current"], ["catalog", "check"]):
        with caplog.at_level(logging.INFO):
            assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err == (
            "leads: PostgreSQL refused the user name or password at "
            f"{url_with(locked_cluster, '***')}: set DATABASE_URL to a user and password that "
            "server accepts, or stop that server\n"
        ), argv
    monkeypatch.setenv("DATABASE_URL", url_with(locked_cluster, PASSWORD))
    assert main(["db", "current"]) == 0
