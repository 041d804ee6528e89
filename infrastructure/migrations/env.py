"""Alembic environment: migrates the connection handed over by `infrastructure.migrate`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure.settings import Settings


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    engine = create_async_engine(Settings.from_env().async_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    # A named paramstyle, so that `%` in the SQL is written as is, not doubled.
    context.configure(
        dialect_name="postgresql",
        dialect_opts={"paramstyle": "named"},
        target_metadata=None,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if context.is_offline_mode():  # `leads db init-sql`: the migrations as SQL text
    _run_offline()
elif connection is not None:
    _run(connection)
else:  # plain `alembic` command line
    asyncio.run(_run_standalone())
