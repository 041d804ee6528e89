"""The unit of work: one pooled connection, one transaction, rolled back unless committed."""

from __future__ import annotations

import contextlib
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.errors import ServiceUnavailable
from infrastructure.database import is_unavailable
from infrastructure.repositories import SqlLeadRepository, SqlSourceRepository


class SqlUnitOfWork:
    sources: SqlSourceRepository
    leads: SqlLeadRepository
    connection: AsyncConnection

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._committed = False

    async def __aenter__(self) -> SqlUnitOfWork:
        try:
            self.connection = await self._engine.connect()
            await self.connection.begin()
        except Exception as error:
            if is_unavailable(error):
                raise ServiceUnavailable() from error
            raise
        self.sources = SqlSourceRepository(self.connection)
        self.leads = SqlLeadRepository(self.connection)
        return self

    async def commit(self) -> None:
        await self.connection.commit()
        self._committed = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                # A broken connection cannot roll back; closing it discards the transaction.
                with contextlib.suppress(Exception):
                    await self.connection.rollback()
        finally:
            with contextlib.suppress(Exception):
                await self.connection.close()
        if exc is not None and not isinstance(exc, ServiceUnavailable) and is_unavailable(exc):
            # Nothing was committed (or the commit's outcome is unknown): safe to retry.
            raise ServiceUnavailable() from exc


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine)
