"""The catalog's unit of work: the same transaction handling as leads, with a catalog repository."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.catalog_repository import SqlCatalogRepository
from infrastructure.unit_of_work import SqlUnitOfWork


class SqlCatalogUnitOfWork(SqlUnitOfWork):
    catalog: SqlCatalogRepository

    async def __aenter__(self) -> SqlCatalogUnitOfWork:
        await super().__aenter__()
        self.catalog = SqlCatalogRepository(self.connection)
        return self


class SqlCatalogUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __call__(self) -> SqlCatalogUnitOfWork:
        return SqlCatalogUnitOfWork(self._engine)
