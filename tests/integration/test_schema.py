"""The migration and the database-level guarantees of SPEC §4."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infrastructure import migrate
from infrastructure.settings import to_asyncpg_url
from tests.partitioned_leads import is_partitioned, partition_leads
from tests.support import Catalog

CATALOG_TABLES = ("markets", "verticals", "offers", "sources", "source_http_mappings")


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    expected = {*CATALOG_TABLES, "leads", "catalog_version"}
    asyncio.run(migrate.upgrade(url))
    assert expected <= asyncio.run(_tables(url))
    asyncio.run(migrate.downgrade(url, "base"))
    assert asyncio.run(_tables(url)) == {"alembic_version"}
    asyncio.run(migrate.upgrade(url))
    assert expected <= asyncio.run(_tables(url))


@pytest.mark.parametrize(
    "assignment",
    [
        "offer_id = offer_id + 1000000",
        "source_id = source_id + 1000000",
        "idempotency_key = 'other'",
        "idempotency_key_origin = 'derived'",
        "email = 'changed@b.example'",
        "phone = '5551234567'",
        "lead_id = gen_random_uuid()",
    ],
)
async def test_trigger_rejects_changing_bindings_key_and_raw_contact(
    catalog: Catalog, assignment: str
) -> None:
    lead_id = await catalog.lead()
    with pytest.raises(DBAPIError, match="cannot change"):
        await catalog.execute(f"UPDATE leads SET {assignment} WHERE lead_id = :id", id=lead_id)


async def test_trigger_allows_status_change_and_stamps_updated_at(
    catalog: Catalog, engine: AsyncEngine
) -> None:
    lead_id = await catalog.lead()
    await catalog.execute("UPDATE leads SET status = 'validated' WHERE lead_id = :id", id=lead_id)
    async with engine.connect() as connection:
        status, changed = (
            await connection.execute(
                text("SELECT status, updated_at > created_at FROM leads WHERE lead_id = :id"),
                {"id": lead_id},
            )
        ).one()
    assert status == "validated"
    assert changed


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("UPDATE sources SET source_key = 'Upper' WHERE source_id = :id", "sources_source_key"),
        ("UPDATE sources SET source_key = ' x' WHERE source_id = :id", "sources_source_key"),
        ("UPDATE markets SET phone_region = 'us' WHERE market_id = :id", "markets_phone_region"),
    ],
)
async def test_check_constraints(catalog: Catalog, sql: str, constraint: str) -> None:
    source = await catalog.source()
    row_id = source.market_id if "markets" in sql else source.source_id
    with pytest.raises(DBAPIError, match=constraint):
        await catalog.execute(sql, id=row_id)


async def test_status_pattern_is_enforced(catalog: Catalog) -> None:
    lead_id = await catalog.lead()
    with pytest.raises(DBAPIError, match="leads_status_check"):
        await catalog.execute(
            "UPDATE leads SET status = 'Bad Status' WHERE lead_id = :id", id=lead_id
        )


async def _scalars(engine: AsyncEngine, sql: str, **params: object) -> list[object]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).scalars())


async def test_every_unique_key_of_leads_contains_source_id(engine: AsyncEngine) -> None:
    unique_keys = await _scalars(
        engine,
        "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
        "WHERE i.indrelid = 'leads'::regclass AND i.indisunique GROUP BY i.indexrelid "
        "ORDER BY 1",
    )
    assert unique_keys == [["idempotency_key", "source_id"], ["lead_id", "source_id"]]
    lead_id_indexes = await _scalars(
        engine,
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'leads' "
        "AND indexname = 'leads_lead_id_idx'",
    )
    assert lead_id_indexes == [
        "CREATE INDEX leads_lead_id_idx ON public.leads USING btree (lead_id)"
    ]


def test_leads_partition_by_source_at_head_but_not_at_0001(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    asyncio.run(migrate.upgrade(url, "0001"))
    with pytest.raises(DBAPIError, match="must include all partitioning columns"):
        asyncio.run(partition_leads(url))
    assert not asyncio.run(is_partitioned(url))
    asyncio.run(migrate.upgrade(url))
    names = asyncio.run(_names_on_leads(url))
    asyncio.run(partition_leads(url))
    assert asyncio.run(is_partitioned(url))
    assert asyncio.run(_names_on_leads(url)) == names


async def _names_on_leads(url: str) -> set[str]:
    """Constraints, indexes and triggers of `leads`: the partitioned rebuild keeps them all."""
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        found = await _scalars(
            engine,
            "SELECT conname::text FROM pg_constraint WHERE conrelid = 'leads'::regclass "
            "UNION ALL SELECT indexname::text FROM pg_indexes WHERE tablename = 'leads' "
            "UNION ALL SELECT tgname::text FROM pg_trigger "
            "WHERE tgrelid = 'leads'::regclass AND NOT tgisinternal",
        )
    finally:
        await engine.dispose()
    assert len(found) > 10
    return {str(name) for name in found}


def test_downgrade_to_0001_restores_the_lead_id_key(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    asyncio.run(migrate.upgrade(url))
    asyncio.run(migrate.downgrade(url, "0001"))
    assert "catalog_version" not in asyncio.run(_tables(url))
    with pytest.raises(DBAPIError, match="must include all partitioning columns"):
        asyncio.run(partition_leads(url))


async def _catalog_version(engine: AsyncEngine) -> int:
    (version,) = await _scalars(engine, "SELECT version FROM catalog_version")
    assert isinstance(version, int)
    return version


@pytest.mark.parametrize(
    "write",
    [
        "UPDATE markets SET name = name WHERE market_id = :market_id",
        "INSERT INTO verticals (code, name) VALUES (:code, 'V')",
        "UPDATE offers SET is_active = is_active WHERE offer_id = :offer_id",
        "UPDATE sources SET is_active = false WHERE source_id = :source_id",
        "INSERT INTO source_http_mappings (source_id, hostname) VALUES (:source_id, :code)",
        "DELETE FROM source_http_mappings WHERE source_id = :source_id",
    ],
)
async def test_every_catalog_write_bumps_the_catalog_version(
    catalog: Catalog, engine: AsyncEngine, write: str
) -> None:
    source = await catalog.source()
    before = await _catalog_version(engine)
    params = {
        "market_id": source.market_id,
        "offer_id": source.offer_id,
        "source_id": source.source_id,
        "code": f"v{uuid.uuid4().hex[:10]}.example.com",
    }
    await catalog.execute(write, **{k: v for k, v in params.items() if f":{k}" in write})
    assert await _catalog_version(engine) > before


def test_truncating_the_catalog_bumps_the_catalog_version(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    asyncio.run(migrate.upgrade(url))

    async def truncate() -> tuple[int, int]:
        engine = create_async_engine(to_asyncpg_url(url))
        try:
            before = await _catalog_version(engine)
            async with engine.begin() as connection:
                await connection.execute(text(f"TRUNCATE {', '.join(CATALOG_TABLES)} CASCADE"))
            return before, await _catalog_version(engine)
        finally:
            await engine.dispose()

    before, after = asyncio.run(truncate())
    assert after > before


async def test_writing_leads_leaves_the_catalog_version_alone(
    catalog: Catalog, engine: AsyncEngine
) -> None:
    lead_id = await catalog.lead()
    before = await _catalog_version(engine)
    await catalog.execute("UPDATE leads SET status = 'validated' WHERE lead_id = :id", id=lead_id)
    assert await _catalog_version(engine) == before
