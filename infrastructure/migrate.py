"""Schema migrations: apply and revert Alembic revisions on a database (what revision it is at:
`infrastructure/schema_revision.py`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure.schema_revision import MIGRATIONS_DIR
from infrastructure.settings import to_asyncpg_url


async def _run(database_url: str, action: str, revision: str) -> None:
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        async with engine.begin() as connection:
            # One migrator at a time, whoever else runs `db upgrade` concurrently.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7235712348)")

            def run(sync_connection: Connection) -> None:
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS_DIR))
                config.attributes["connection"] = sync_connection
                getattr(command, action)(config, revision)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(database_url: str, revision: str = "head") -> None:
    await _run(database_url, "upgrade", revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    await _run(database_url, "downgrade", revision)
