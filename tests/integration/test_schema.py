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
from tests.support import Catalog


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
    expected = {"markets", "verticals", "offers", "sources", "source_http_mappings", "leads"}
    asyncio.run(migrate.upgrade(url))
    assert expected <= asyncio.run(_tables(url))
    asyncio.run(migrate.downgrade(url, "base"))
    assert asyncio.run(_tables(url)) == {"alembic_version"}
    asyncio.run(migrate.upgrade(url))
    assert expected <= asyncio.run(_tables(url))


async def _insert_lead(catalog: Catalog) -> uuid.UUID:
    source = await catalog.source()
    lead_id = uuid.uuid4()
    await catalog.execute(
        "INSERT INTO leads (lead_id, source_id, offer_id, market_id, vertical_id, "
        "idempotency_key, idempotency_key_origin, email) VALUES (:lead_id, :source_id, "
        ":offer_id, :market_id, :vertical_id, 'k', 'client', 'a@b.example')",
        lead_id=lead_id,
        source_id=source.source_id,
        offer_id=source.offer_id,
        market_id=source.market_id,
        vertical_id=source.vertical_id,
    )
    return lead_id


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
    lead_id = await _insert_lead(catalog)
    with pytest.raises(DBAPIError, match="cannot change"):
        await catalog.execute(f"UPDATE leads SET {assignment} WHERE lead_id = :id", id=lead_id)


async def test_trigger_allows_status_change_and_stamps_updated_at(
    catalog: Catalog, engine: AsyncEngine
) -> None:
    lead_id = await _insert_lead(catalog)
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
    lead_id = await _insert_lead(catalog)
    with pytest.raises(DBAPIError, match="leads_status_check"):
        await catalog.execute(
            "UPDATE leads SET status = 'Bad Status' WHERE lead_id = :id", id=lead_id
        )
