"""A test-only schema variant: `leads` rebuilt as `PARTITION BY HASH (source_id)`.

PostgreSQL's native partitioning enforces the rule a distributed table (Citus) enforces: every
unique index must contain the partition key. The ingest tests marked with `LEADS_LAYOUTS` run
against both layouts, so the service is proven to work unchanged on a partitioned `leads`.

The rebuild keeps every column, default, check, key, index, foreign key and trigger of the
migrated table, under the same names; it runs in one transaction and fails, changing nothing,
when a unique key of `leads` lacks `source_id`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure.settings import to_asyncpg_url

PARTITIONS = 4
LAYOUTS = ("plain", "partitioned")
# Applied to a test module (`pytestmark = LEADS_LAYOUTS`): each of its tests runs once against
# the plain migrated schema and once against the partitioned one.
LEADS_LAYOUTS = pytest.mark.parametrize("leads_layout", LAYOUTS, indirect=True, scope="session")

_DEFINITIONS = """
SELECT format('ALTER TABLE leads ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid))
FROM pg_constraint
WHERE conrelid = 'leads_plain'::regclass AND contype IN ('p', 'u', 'f')
ORDER BY contype DESC, conname
"""
_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'leads_plain'::regclass
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""
_TRIGGERS = """
SELECT pg_get_triggerdef(oid) FROM pg_trigger
WHERE tgrelid = 'leads_plain'::regclass AND NOT tgisinternal ORDER BY tgname
"""


async def partition_leads(database_url: str, partitions: int = PARTITIONS) -> None:
    """Rebuild `leads` as hash-partitioned by `source_id`, rows kept."""
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        async with engine.begin() as connection:

            async def rows(sql: str) -> list[str]:
                return [row[0] for row in await connection.execute(text(sql))]

            await connection.execute(text("ALTER TABLE leads RENAME TO leads_plain"))
            definitions = await rows(_DEFINITIONS)
            indexes = await rows(_INDEXES)
            triggers = await rows(_TRIGGERS)
            await connection.execute(
                text(
                    "CREATE TABLE leads (LIKE leads_plain INCLUDING DEFAULTS INCLUDING "
                    "CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) "
                    "PARTITION BY HASH (source_id)"
                )
            )
            for remainder in range(partitions):
                await connection.execute(
                    text(
                        f"CREATE TABLE leads_p{remainder} PARTITION OF leads "
                        f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder})"
                    )
                )
            await connection.execute(text("INSERT INTO leads SELECT * FROM leads_plain"))
            await connection.execute(text("DROP TABLE leads_plain"))
            for statement in (*definitions, *indexes, *triggers):
                await connection.execute(text(statement.replace("leads_plain", "leads")))
    finally:
        await engine.dispose()


async def is_partitioned(database_url: str) -> bool:
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        async with engine.connect() as connection:
            kind = (
                await connection.execute(
                    text("SELECT relkind::text FROM pg_class WHERE oid = 'leads'::regclass")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return bool(kind == "p")
