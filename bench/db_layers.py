"""Client-side CPU per new lead, layer by layer: `.venv/bin/python -m bench.db_layers [N]`.

One process, one connection, sequential, uvloop (as under uvicorn), a fresh database that is
dropped afterwards. Each variant stores one new lead with the service's own statements
(`infrastructure/repositories.py`); what differs is the layer in between. The CPU time is this
process's (`time.process_time`: user + system), so PostgreSQL's share is not in it.

  A   the service's unit of work (DriverUnitOfWork): pool checkout, BEGIN, SELECT, INSERT, COMMIT
  A2  the same four round trips on one held SQLAlchemy connection (no pool checkout/checkin)
  B   raw asyncpg (SQLAlchemy's own driver connection), the same four round trips
  C   raw asyncpg, one statement (SELECT folded into the INSERT as a CTE), autocommit
  D   SQLAlchemy (pool + Core), that one statement, AUTOCOMMIT
  G   five `greenlet_spawn` no-ops: the greenlet hops one request makes today
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import astuple
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import text
from sqlalchemy.util.concurrency import greenlet_spawn

from bench import runner
from infrastructure.engine import create_engine
from infrastructure.repositories import INSERT_LEAD, SOURCE_BY_KEY
from infrastructure.settings import Settings
from infrastructure.sql import Statement
from infrastructure.unit_of_work import DriverUnitOfWork

# The service's statements as SQLAlchemy text(), for the SQLAlchemy variants.
SQL_SOURCE_BY_KEY = text(SOURCE_BY_KEY.text)
SQL_INSERT_LEAD = text(INSERT_LEAD.text)

# The INSERT's parameters are named after its columns.
INSERT_COLUMNS = INSERT_LEAD.names
BINDINGS = ("source_id", "offer_id", "market_id", "vertical_id")


def lead(key: str, source: Any = None) -> dict[str, Any]:
    values: dict[str, Any] = dict(runner.LEAD_VALUES, is_test=False)
    values.update(idempotency_key=key, lead_id=uuid.uuid4())
    if source is not None:
        values.update(zip(BINDINGS, (source[0], source[2], source[3], source[4]), strict=True))
    return values


def one_statement() -> Statement:
    """The SELECT of the source folded into the INSERT (a CTE): one round trip, autocommit."""
    values = ", ".join(
        f"s.{c}"
        if c in BINDINGS
        else ("CAST(:attributes AS jsonb)" if c == "attributes" else f":{c}")
        for c in INSERT_COLUMNS
    )
    insert_head, _, rest = INSERT_LEAD.text.partition(" VALUES ")
    returning = rest[rest.index(" ON CONFLICT") :]
    return Statement(
        f"WITH s AS ({SOURCE_BY_KEY.text}) {insert_head} SELECT {values} FROM s{returning}"
    )


async def measure(name: str, n: int, fn: Callable[[str], Awaitable[None]]) -> None:
    for i in range(200):
        await fn(f"warm-{name}-{i}-{uuid.uuid4().hex[:6]}")
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await fn(f"{name}-{i}-{uuid.uuid4().hex[:6]}")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"| {name} | {1e6 * cpu / n:.0f} | {1e6 * wall / n:.0f} |", flush=True)


async def main(db_url: str, n: int) -> None:
    engine = create_engine(Settings(database_url=db_url, db_pool_size=2))
    source_key = {"source_key": runner.SOURCE_KEY}
    print("| variant | client CPU µs/lead | wall µs/lead |\n|---|---|---|")

    async def service_uow(key: str) -> None:
        async with DriverUnitOfWork(engine) as uow:
            source = await uow.sources.by_key(runner.SOURCE_KEY)
            assert source is not None
            await uow.leads._connection.fetchrow(
                INSERT_LEAD.sql, *INSERT_LEAD.args(lead(key, astuple(source)))
            )
            await uow.commit()

    await measure("A service unit of work (4 round trips)", n, service_uow)

    held = await engine.connect()

    async def held_connection(key: str) -> None:
        await held.begin()
        row = (await held.execute(SQL_SOURCE_BY_KEY, source_key)).first()
        (await held.execute(SQL_INSERT_LEAD, lead(key, row))).first()
        await held.commit()

    await measure("A2 SQLAlchemy, held connection (4 round trips)", n, held_connection)

    driver = (await held.get_raw_connection()).driver_connection

    async def raw(key: str) -> None:
        async with driver.transaction():
            row = await driver.fetchrow(SOURCE_BY_KEY.sql, runner.SOURCE_KEY)
            await driver.fetchrow(INSERT_LEAD.sql, *INSERT_LEAD.args(lead(key, row)))

    await measure("B raw asyncpg (4 round trips)", n, raw)

    cte = one_statement()

    async def raw_one(key: str) -> None:
        values = dict(lead(key), source_key=runner.SOURCE_KEY)
        await driver.fetchrow(cte.sql, *cte.args(values))

    await measure("C raw asyncpg, one statement (1 round trip)", n, raw_one)
    await held.close()

    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    cte_text = text(cte.text)

    async def sqlalchemy_one(key: str) -> None:
        async with autocommit.connect() as connection:
            values = dict(lead(key), source_key=runner.SOURCE_KEY)
            (await connection.execute(cte_text, values)).first()

    await measure("D SQLAlchemy, one statement, AUTOCOMMIT (1 round trip)", n, sqlalchemy_one)

    async def hops(_key: str) -> None:
        for _ in range(5):
            await greenlet_spawn(lambda: None)

    await measure("G 5 greenlet_spawn no-ops", n, hops)
    await engine.dispose()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    run = runner.Run(runner.parse_args([]), Path(tempfile.mkdtemp(prefix="leads-bench-")))
    try:
        run.create_database()
        uvloop.install()
        asyncio.run(main(run.db_url, count))
    finally:
        run.drop_database()
