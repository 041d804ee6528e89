"""The catalog queries' reader: one snapshot statement on a pooled connection, nothing to commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.catalog import CatalogSnapshot
from infrastructure.catalog_repository import SqlCatalogRepository
from infrastructure.engine import unavailable_on_db_failure


class SqlCatalogReader:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def snapshot(self) -> CatalogSnapshot:
        # The snapshot is one statement, so it is consistent without a transaction of ours.
        async with unavailable_on_db_failure(), self._engine.connect() as connection:
            return await SqlCatalogRepository(connection).snapshot()
