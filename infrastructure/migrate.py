"""Schema migrations: apply, revert and inspect Alembic revisions on a database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from infrastructure.engine import unavailable_on_db_failure
from infrastructure.settings import to_asyncpg_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


async def current_revision(connection: AsyncConnection) -> str | None:
    def read(sync_connection: Connection) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    return await connection.run_sync(read)


async def _run(database_url: str, action: str, revision: str) -> None:
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        async with engine.begin() as connection:
            # One migrator at a time, whoever else runs `db upgrade` concurrently.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7235712348)")

            def run(sync_connection: Connection) -> None:
                getattr(command, action)(_config(sync_connection), revision)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(database_url: str, revision: str = "head") -> None:
    await _run(database_url, "upgrade", revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    await _run(database_url, "downgrade", revision)


class AlembicSchemaProbe:
    """Answers `CheckReadiness` from the `alembic_version` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.expected_revision = head_revision()

    async def current_revision(self) -> str | None:
        async with unavailable_on_db_failure(), self._engine.connect() as connection:
            return await current_revision(connection)
