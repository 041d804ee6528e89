"""The service behind PgBouncer in transaction pooling mode (LEADS_DB_STATEMENT_CACHE=false).

Each transaction may run on a different server connection, so nothing may rely on
session state: prepared statements must not be reused across transactions nor pile up
on server connections, and a request cut off mid-transaction must not poison the pool.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure import migrate
from infrastructure.local_postgres import free_port, port_answers
from infrastructure.settings import to_asyncpg_url
from tests.faults.harness import (
    DB_TIMEOUT_S,
    MARGIN_S,
    Service,
    client_for,
    lead_payload,
    post_lead,
    run_load,
    running_service,
    stored_leads,
    table_locked,
    unique_keys,
)
from tests.support import Catalog, CatalogSource, posix_only

pytestmark = posix_only
SERVER_POOL_SIZE = 2  # PgBouncer's connections to PostgreSQL: fewer than the service's 10


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/sbin")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is not installed; .ci/run installs it with apt-get")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer); CI runs this test")
    return found


@dataclass
class PgBouncer:
    port: int
    database: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"


def _as_non_root(argv: list[str]) -> list[str]:
    # PgBouncer refuses to run as root; as in LocalPostgres, be uid 1 in a user namespace.
    if os.geteuid() != 0:
        return argv
    return ["unshare", "--user", "--map-user=1", "--map-group=1", "--", *argv]


@pytest.fixture
def bouncer_database(new_database: Callable[[], str]) -> tuple[str, CatalogSource]:
    url = new_database()

    async def prepare() -> CatalogSource:
        await migrate.upgrade(url)
        engine = create_async_engine(to_asyncpg_url(url))
        try:
            return await Catalog(engine).source()
        finally:
            await engine.dispose()

    return url, asyncio.run(prepare())


@pytest.fixture
def pgbouncer(bouncer_database: tuple[str, CatalogSource], tmp_path: Path) -> Iterator[PgBouncer]:
    binary = pgbouncer_binary()
    server = urlsplit(bouncer_database[0])
    port = free_port()
    bouncer = PgBouncer(port, server.path.lstrip("/"), tmp_path / "pgbouncer.log")
    ini = tmp_path / "pgbouncer.ini"
    # PgBouncer logs in to PostgreSQL with the test server's own user and password.
    login = f"user={server.username or 'postgres'}"
    if server.password is not None:
        password = unquote(server.password).replace("\\", "\\\\").replace("'", "\\'")
        login += f" password='{password}'"
    ini.write_text(
        "[databases]\n"
        f"* = host={server.hostname} port={server.port or 5432} {login}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        f"default_pool_size = {SERVER_POOL_SIZE}\nmax_client_conn = 200\n"
        f"logfile = {bouncer.log_path}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        _as_non_root([binary, str(ini)]), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while not port_answers("127.0.0.1", port, timeout=0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                log = bouncer.log_path.read_text() if bouncer.log_path.exists() else ""
                pytest.fail(f"pgbouncer did not start:\n{log}")
            time.sleep(0.05)
        yield bouncer
    finally:
        process.send_signal(signal.SIGINT)  # SIGINT: safe shutdown
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def service(pgbouncer: PgBouncer, tmp_path: Path) -> Iterator[Service]:
    with running_service(
        tmp_path, pgbouncer.url, db_statement_cache=False, db_pool_size=10
    ) as service:
        yield service


async def _prepared_statements_on_server_connections(bouncer: PgBouncer) -> list[int]:
    """How many named prepared statements each of PgBouncer's server connections holds."""
    connections = [
        await asyncpg.connect(bouncer.url, statement_cache_size=0) for _ in range(SERVER_POOL_SIZE)
    ]
    try:
        # One open transaction per client pins each to its own server connection.
        counts = []
        for connection in connections:
            await connection.execute("BEGIN")
            counts.append(await connection.fetchval("SELECT count(*) FROM pg_prepared_statements"))
        return counts
    finally:
        for connection in connections:
            await connection.close()


async def test_twenty_identical_posts_through_pgbouncer_create_one_lead(
    service: Service, bouncer_database: tuple[str, CatalogSource]
) -> None:
    url, source = bouncer_database
    payload = lead_payload(source, unique_keys(1)[0])
    async with client_for(service) as client:
        responses = await asyncio.gather(
            *(client.post("/api/leads", json=payload) for _ in range(20))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code > 201]
    lead_ids = {r.json()["lead_id"] for r in responses}
    assert len(lead_ids) == 1
    assert await stored_leads(url) == {lead_ids.pop(): 1}


async def test_load_through_pgbouncer_leaves_no_prepared_statements_behind(
    service: Service, pgbouncer: PgBouncer, bouncer_database: tuple[str, CatalogSource]
) -> None:
    url, source = bouncer_database
    keys = unique_keys(100)
    async with client_for(service) as client:
        load = await run_load(client, source, keys, concurrency=10)
        replay = await run_load(client, source, keys[:20], concurrency=10)
    assert load.by_status() == {201: 100}
    assert replay.by_status() == {200: 20}
    assert len(await stored_leads(url)) == 100
    # Statements that outlive their transaction would pile up on PgBouncer's server
    # connections (each one, forever, until PgBouncer recycles the connection).
    assert await _prepared_statements_on_server_connections(pgbouncer) == [0] * SERVER_POOL_SIZE


async def test_request_cut_off_mid_transaction_does_not_poison_pgbouncer(
    service: Service, bouncer_database: tuple[str, CatalogSource]
) -> None:
    url, source = bouncer_database
    key = unique_keys(1)[0]
    async with client_for(service) as client:
        async with table_locked(url, "leads"):
            blocked = await post_lead(client, source, key)
        assert (blocked.status, blocked.error_code) == (503, "service_unavailable")
        assert blocked.elapsed_s < DB_TIMEOUT_S + MARGIN_S
        after = await asyncio.gather(
            *(post_lead(client, source, k) for k in [key, *unique_keys(9)])
        )
    assert {o.status for o in after} == {201}
    assert len(await stored_leads(url)) == 10
