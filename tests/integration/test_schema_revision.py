"""The revision the code expects and the one a database is at, as Alembic itself reads them."""

from __future__ import annotations

import asyncio

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure import migrate
from infrastructure.schema_revision import MIGRATIONS_DIR, current_revision, head_revision
from infrastructure.settings import to_asyncpg_url


def test_the_head_is_alembics() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


async def _current(url: str) -> str | None:
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            return await current_revision(connection)
    finally:
        await engine.dispose()


def test_a_database_is_at_none_then_at_each_revision_it_is_migrated_to(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    assert asyncio.run(_current(url)) is None
    asyncio.run(migrate.upgrade(url, "0002"))
    assert asyncio.run(_current(url)) == "0002"
    asyncio.run(migrate.upgrade(url))
    assert asyncio.run(_current(url)) == head_revision()
