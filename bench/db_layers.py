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
from infrastructure.database import create_engine
from infrastructure.repositories import INSERT_LEAD, SOURCE_BY_KEY
from infrastructure.settings import Settings
from infrastructure.unit_of_work import DriverUnitOfWork

# The service's statements as SQLAlchemy text(), for the SQLAlchemy variants.
SQL_SOURCE_BY_KEY = text(SOURCE_BY_KEY.text)
SQL_INSERT_LEAD = text(INSERT_LEAD.text)

INSERT_COLUMNS = [
    "lead_id",
    "source_id",
    "offer_id",
    "market_id",
    "vertical_id",
    "idempotency_key",
    "idempotency_key_origin",
    "is_test",
    "email",
    "normalized_email",
    "phone",
    "normalized_phone",
    "first_name",
    "last_name",
    "address",
    "city",
    "region",
    "postal_code",
    "country",
    "attributes",
    "received_host",
    "received_path",
]
BINDINGS = ("source_id", "offer_id", "market_id", "vertical_id")


def lead(key: str, source: Any = None) -> dict[str, Any]:
    values: dict[str, Any] = dict(runner.LEAD_VALUES, is_test=False)
    values.update(idempotency_key=key, lead_id=uuid.uuid4())
    if source is not None:
        values.update(zip(BINDINGS, (source[0], source[2], source[3], source[4]), strict=True))
    return values


def positional(sql: str, names: list[str]) -> str:
    """`:name` → `$n` for asyncpg (longest names first so `:phone` never eats `:phone_x`)."""
    for name in sorted(names, key=len, reverse=True):
        sql = sql.replace(f":{name}", f"${names.index(name) + 1}")
    return sql


def one_statement() -> tuple[str, list[str]]:
    """The SELECT of the source folded into the INSERT (a CTE): one round trip, autocommit."""
    own = [c for c in INSERT_COLUMNS if c not in BINDINGS]
    values = ", ".join(
        f"s.{c}"
        if c in BINDINGS
        else ("CAST(:attributes AS jsonb)" if c == "attributes" else f":{c}")
        for c in INSERT_COLUMNS
    )
    insert_head, _, rest = INSERT_LEAD.text.partition(" VALUES ")
    returning = rest[rest.index(" ON CONFLICT") :]
    sql = f"WITH s AS ({SOURCE_BY_KEY.text}) {insert_head} SELECT {values} FROM s{returning}"
    return sql, ["source_key", *own]


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
    select_sql = positional(SOURCE_BY_KEY.text, ["source_key"])
    insert_sql = positional(INSERT_LEAD.text, INSERT_COLUMNS)

    async def raw(key: str) -> None:
        async with driver.transaction():
            row = await driver.fetchrow(select_sql, runner.SOURCE_KEY)
            values = lead(key, row)
            await driver.fetchrow(insert_sql, *[values[c] for c in INSERT_COLUMNS])

    await measure("B raw asyncpg (4 round trips)", n, raw)

    cte, cte_names = one_statement()
    cte_positional = positional(cte, cte_names)

    async def raw_one(key: str) -> None:
        values = dict(lead(key), source_key=runner.SOURCE_KEY)
        await driver.fetchrow(cte_positional, *[values[c] for c in cte_names])

    await measure("C raw asyncpg, one statement (1 round trip)", n, raw_one)
    await held.close()

    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    cte_text = text(cte)

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
