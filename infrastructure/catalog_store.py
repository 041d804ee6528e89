"""The catalog's database access: a unit of work for its commands, a reader for its queries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.catalog import CatalogSnapshot
from infrastructure.catalog_repository import SqlCatalogRepository
from infrastructure.engine import is_unavailable, terminate, unavailable_on_db_failure


class SqlCatalogUnitOfWork:
    """One transaction on a SQLAlchemy connection, with the catalog repository on it."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.catalog = SqlCatalogRepository(connection)

    async def commit(self) -> None:
        await self._connection.commit()


@asynccontextmanager
async def open_catalog_unit_of_work(engine: AsyncEngine) -> AsyncIterator[SqlCatalogUnitOfWork]:
    """Rolled back on leaving unless committed: closing the connection rolls back what its
    transaction did not commit."""
    async with unavailable_on_db_failure():
        connection = await engine.connect()
        try:
            await connection.begin()
            yield SqlCatalogUnitOfWork(connection)
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError) or is_unavailable(error):
                # Interrupted or disconnected: its state is unknown, so no rollback on it.
                with contextlib.suppress(Exception):
                    if not connection.invalidated:
                        terminate((await connection.get_raw_connection()).driver_connection)
                        await connection.invalidate()
            raise
        finally:
            with contextlib.suppress(Exception):
                await connection.close()


class SqlCatalogReader:
    """The catalog queries' reader: one snapshot statement, consistent without a transaction
    of ours, on a pooled connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def snapshot(self) -> CatalogSnapshot:
        async with unavailable_on_db_failure(), self._engine.connect() as connection:
            return await SqlCatalogRepository(connection).snapshot()
