"""Migration 0003 (publisher intake): the new source and lead columns, and the trigger over them."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infrastructure import migrate
from infrastructure.settings import to_asyncpg_url
from tests.support import Catalog

SOURCE_COLUMNS = {"require_key", "allowed_networks", "field_aliases"}
LEAD_COLUMNS = {"client_ip", "user_agent"}


async def _columns(url: str, table: str) -> set[str]:
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = :table"
                ),
                {"table": table},
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


def test_downgrade_below_publisher_intake_drops_the_columns_and_upgrade_restores_them(
    new_database,  # type: ignore[no-untyped-def]
) -> None:
    url = new_database()
    asyncio.run(migrate.upgrade(url))
    assert asyncio.run(_columns(url, "sources")) >= SOURCE_COLUMNS
    assert asyncio.run(_columns(url, "leads")) >= LEAD_COLUMNS
    asyncio.run(migrate.downgrade(url, "0002"))
    assert not SOURCE_COLUMNS & asyncio.run(_columns(url, "sources"))
    assert not LEAD_COLUMNS & asyncio.run(_columns(url, "leads"))
    asyncio.run(migrate.upgrade(url))
    assert asyncio.run(_columns(url, "sources")) >= SOURCE_COLUMNS


async def test_a_source_written_without_the_new_columns_gets_the_defaults(
    catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT require_key, allowed_networks::text[], field_aliases "
                    "FROM sources WHERE source_id = :id"
                ),
                {"id": source.source_id},
            )
        ).one()
    assert tuple(row) == (False, [], {})


async def test_allowed_networks_hold_ipv4_and_ipv6_cidrs(
    catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    await catalog.execute(
        "UPDATE sources SET allowed_networks = CAST(:networks AS cidr[]) WHERE source_id = :id",
        networks=["203.0.113.0/24", "2001:db8::/32"],
        id=source.source_id,
    )
    async with engine.connect() as connection:
        networks = (
            await connection.execute(
                text("SELECT allowed_networks::text[] FROM sources WHERE source_id = :id"),
                {"id": source.source_id},
            )
        ).scalar_one()
    assert networks == ["203.0.113.0/24", "2001:db8::/32"]
    with pytest.raises(DBAPIError, match="cidr"):
        # cidr refuses host bits set outside the mask: the catalog must store networks.
        await catalog.execute(
            "UPDATE sources SET allowed_networks = '{203.0.113.7/24}' WHERE source_id = :id",
            id=source.source_id,
        )


async def test_field_aliases_must_be_an_object(catalog: Catalog) -> None:
    source = await catalog.source()
    with pytest.raises(DBAPIError, match="sources_field_aliases_check"):
        await catalog.execute(
            "UPDATE sources SET field_aliases = '[]' WHERE source_id = :id", id=source.source_id
        )


@pytest.mark.parametrize(
    "assignment",
    [
        "client_ip = '198.51.100.8'",
        "client_ip = NULL",
        "user_agent = 'other/1.0'",
        "user_agent = NULL",
    ],
)
async def test_trigger_rejects_changing_the_client_context(
    catalog: Catalog, assignment: str
) -> None:
    lead_id = await catalog.lead()
    with pytest.raises(DBAPIError, match="cannot change"):
        await catalog.execute(f"UPDATE leads SET {assignment} WHERE lead_id = :id", id=lead_id)


async def test_user_agent_is_bounded(catalog: Catalog) -> None:
    source = await catalog.source()
    with pytest.raises(DBAPIError, match="leads_user_agent_check"):
        await catalog.execute(
            "INSERT INTO leads (lead_id, source_id, offer_id, market_id, vertical_id, "
            "idempotency_key, idempotency_key_origin, user_agent) VALUES (gen_random_uuid(), "
            ":source_id, :offer_id, :market_id, :vertical_id, 'k', 'client', repeat('a', 1025))",
            source_id=source.source_id,
            offer_id=source.offer_id,
            market_id=source.market_id,
            vertical_id=source.vertical_id,
        )
