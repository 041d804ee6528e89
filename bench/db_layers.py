"""Client-side CPU per new lead, layer by layer: `.venv/bin/python -m bench.db_layers [N]`.

One process, one connection, sequential, uvloop (as under uvicorn), a fresh database that is
dropped afterwards. Each variant stores one new lead with the service's own statements
(`infrastructure/repositories.py`); what differs is the layer in between. The CPU time is this
process's (`time.process_time`: user + system), so PostgreSQL's share is not in it.

  A   the service's lead store (DriverLeadStore), source cached: pool checkout, WRITE_LEAD
  A2  the former four round trips (BEGIN, SELECT, INSERT, COMMIT) on one held SQLAlchemy
      connection (no pool checkout/checkin)
  B   raw asyncpg (SQLAlchemy's own driver connection), the same four round trips
  C   raw asyncpg, the service's one statement (WRITE_LEAD), autocommit
  D   SQLAlchemy (pool + Core), that one statement, AUTOCOMMIT
  G   two `greenlet_spawn` no-ops: the greenlet hops one request makes today (pool
      checkout and check-in of the lead store)
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import text
from sqlalchemy.util.concurrency import greenlet_spawn

from bench import workload
from bench.database import BenchDatabase
from bench.new_lead_sql import BINDINGS, INSERT_VALUES, lead_params, new_lead
from handlers.ports import SourceBinding, Versioned
from infrastructure.engine import create_engine
from infrastructure.repositories import SOURCE_BY_KEY, WRITE_LEAD
from infrastructure.settings import Settings
from infrastructure.unit_of_work import DriverLeadStore

# The statements as SQLAlchemy text(), for the SQLAlchemy variants.
SQL_SOURCE_BY_KEY = text(SOURCE_BY_KEY.text)
SQL_INSERT_VALUES = text(INSERT_VALUES.text)


def lead_factory(
    source: Versioned[SourceBinding],
) -> Callable[[str, Any], dict[str, Any]]:
    """The service's parameters of the bench lead, computed once (normalization is not what is
    measured here); per lead only the key, lead_id and the looked-up bindings change."""
    params = lead_params(source)

    def lead(key: str, bound: Any = None) -> dict[str, Any]:
        values = dict(params, idempotency_key=key, lead_id=uuid.uuid4())
        if bound is not None:
            values.update((name, bound[name]) for name in BINDINGS)
        return values

    return lead


async def measure(name: str, n: int, fn: Callable[[str], Awaitable[None]]) -> None:
    for i in range(200):
        await fn(f"warm-{name}-{i}-{uuid.uuid4().hex[:6]}")
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await fn(f"{name}-{i}-{uuid.uuid4().hex[:6]}")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"| {name} | {1e6 * cpu / n:.0f} | {1e6 * wall / n:.0f} |", flush=True)


async def main(db_url: str, source: Versioned[SourceBinding], n: int) -> None:
    engine = create_engine(Settings(database_url=db_url, db_pool_size=2))
    source_key = {"source_key": workload.SOURCE_KEY}
    lead = lead_factory(source)
    print("| variant | client CPU µs/lead | wall µs/lead |\n|---|---|---|")

    bench_lead = new_lead("bench", source.value)

    async def service_store(key: str) -> None:
        new = dataclasses.replace(bench_lead, idempotency_key=key, lead_id=uuid.uuid4())
        async with DriverLeadStore(engine) as store:
            written = await store.leads.add(new, source.version)
            assert written.lead is not None

    await measure("A service lead store, source cached (1 round trip)", n, service_store)

    held = await engine.connect()

    async def held_connection(key: str) -> None:
        await held.begin()
        row = (await held.execute(SQL_SOURCE_BY_KEY, source_key)).first()
        assert row is not None
        (await held.execute(SQL_INSERT_VALUES, lead(key, row._mapping))).first()
        await held.commit()

    await measure("A2 SQLAlchemy, held connection (4 round trips)", n, held_connection)

    driver = (await held.get_raw_connection()).driver_connection
    assert driver is not None

    async def raw(key: str) -> None:
        async with driver.transaction():
            row = await driver.fetchrow(SOURCE_BY_KEY.sql, workload.SOURCE_KEY)
            params = lead(key, row)
            await driver.fetchrow(INSERT_VALUES.sql, *INSERT_VALUES.args(params))

    await measure("B raw asyncpg (4 round trips)", n, raw)

    single = WRITE_LEAD

    async def raw_one(key: str) -> None:
        await driver.fetchrow(single.sql, *single.args(lead(key, None)))

    await measure("C raw asyncpg, one statement (1 round trip)", n, raw_one)
    await held.close()

    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    single_text = text(single.text)

    async def sqlalchemy_one(key: str) -> None:
        async with autocommit.connect() as connection:
            (await connection.execute(single_text, lead(key, None))).first()

    await measure("D SQLAlchemy, one statement, AUTOCOMMIT (1 round trip)", n, sqlalchemy_one)

    async def hops(_key: str) -> None:
        for _ in range(2):
            await greenlet_spawn(lambda: None)

    await measure("G 2 greenlet_spawn no-ops", n, hops)
    await engine.dispose()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    workdir = Path(tempfile.mkdtemp(prefix="leads-bench-"))
    database = BenchDatabase(workdir)
    try:
        database.create()
        binding = database.source_binding()
        uvloop.install()
        asyncio.run(main(database.url, binding, count))
    finally:
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)
