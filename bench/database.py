"""The run's database: created on a real PostgreSQL, migrated, given a small catalog, dropped."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import workload
from bench.console import BenchError, log
from handlers.ports import SourceBinding, Versioned
from infrastructure import migrate
from infrastructure.local_postgres import LocalPostgres, resolve_server
from infrastructure.provisioning import drop_database, ensure_database
from infrastructure.repositories import SqlSourceRepository

T = TypeVar("T")
DURABILITY_SETTINGS = ("synchronous_commit", "fsync", "shared_buffers", "max_connections")


def libpq_url(url: str) -> str:
    """pgbench and asyncpg take `postgresql://`, not SQLAlchemy's `postgresql+asyncpg://`."""
    parts = urlsplit(url.strip())
    return urlunsplit(parts._replace(scheme="postgresql"))


async def _catalog(connection: asyncpg.Connection) -> None:
    """A small catalog by plain SQL (SPEC §4): 3 markets, 2 verticals, 3 offers, 5 sources."""
    async with connection.transaction():
        for code, region in (("us", "US"), ("gb", "GB"), ("de", "DE")):
            await connection.execute(
                "INSERT INTO markets (code, name, phone_region) VALUES ($1, $1, $2)", code, region
            )
        for code in ("solar", "insurance"):
            await connection.execute("INSERT INTO verticals (code, name) VALUES ($1, $1)", code)
        await connection.execute(
            "INSERT INTO offers (code, name, market_id, vertical_id) "
            "SELECT m.code || '-' || v.code, m.code || ' ' || v.code, m.market_id, "
            "v.vertical_id FROM markets m CROSS JOIN verticals v "
            "WHERE (m.code, v.code) IN (('us','solar'), ('gb','solar'), ('de','insurance'))"
        )
        await connection.execute(
            "INSERT INTO sources (code, name, offer_id, source_key) "
            "SELECT 'src-' || n, 'Source ' || n, "
            "(SELECT offer_id FROM offers WHERE code = 'us-solar'), "
            "CASE WHEN n = 1 THEN $1 ELSE 'bench-other-' || n END "
            "FROM generate_series(1, 5) n",
            workload.SOURCE_KEY,
        )
        await connection.execute(
            "INSERT INTO source_http_mappings (source_id, hostname, path_prefix) "
            "SELECT source_id, 'bench' || source_id || '.example.com', '/' FROM sources"
        )


@dataclass
class BenchDatabase:
    """`leads_bench_<pid>_<hex>` on DATABASE_URL's server, else 127.0.0.1:5432, else an
    embedded PostgreSQL under `workdir`."""

    workdir: Path
    server: str = ""
    server_url: str = ""
    name: str = ""
    url: str = ""
    embedded: LocalPostgres | None = field(default=None, repr=False)

    def create(self) -> None:
        resolved = resolve_server(self.workdir / "embedded")
        self.embedded = resolved.embedded
        self.server, self.server_url = resolved.description, libpq_url(resolved.server_url)
        self.name = f"leads_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        log(f"database {self.name} on {self.server}")
        self.url = asyncio.run(ensure_database(self.server_url, self.name))
        asyncio.run(migrate.upgrade(self.url))
        self.run(_catalog)

    def drop(self) -> None:
        if self.name:
            asyncio.run(drop_database(self.server_url, self.name))
            log(f"dropped database {self.name}")
            self.name = ""
        if self.embedded is not None:
            self.embedded.remove()
            self.embedded = None

    def run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`await work(connection)` on a connection of its own."""

        async def on_connection() -> T:
            connection = await asyncpg.connect(self.url)
            try:
                return await work(connection)
            finally:
                await connection.close()

        return asyncio.run(on_connection())

    def fetchval(self, sql: str, *params: object) -> Any:
        return self.run(lambda connection: connection.fetchval(sql, *params))

    def lead_count(self, idempotency_key: str | None = None) -> int:
        if idempotency_key is None:
            return int(self.fetchval("SELECT count(*) FROM leads"))
        sql = "SELECT count(*) FROM leads WHERE idempotency_key = $1"
        return int(self.fetchval(sql, idempotency_key))

    def checkpoint(self) -> str | None:
        """Every load run starts right after a checkpoint, so all pay the same full-page writes
        (not wherever the server's checkpoint timer happens to be); a note if not allowed."""
        try:
            self.fetchval("CHECKPOINT")
        except asyncpg.PostgresError as error:  # needs superuser or pg_checkpoint
            return f"CHECKPOINT not allowed: {error}"
        return None

    def source_binding(self) -> Versioned[SourceBinding]:
        """What the bench source is bound to and the catalog version, read with the service's
        own statement."""
        found = self.run(lambda c: SqlSourceRepository(c).by_key(workload.SOURCE_KEY))
        if found is None:
            raise BenchError(f"no active source has the key {workload.SOURCE_KEY!r}")
        return found

    def server_facts(self) -> dict[str, str]:
        async def facts(connection: asyncpg.Connection) -> dict[str, str]:
            found = {"server_version": await connection.fetchval("SHOW server_version")}
            for name in (*DURABILITY_SETTINGS, "wal_level"):
                found[name] = await connection.fetchval(f"SHOW {name}")
            return found

        result: dict[str, str] = self.run(facts)
        return result
