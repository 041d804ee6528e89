"""Database access for the handlers: one pooled connection each, under one deadline.

`DriverLeadStore` serves lead ingestion, the hot path: it checks a connection out of the
engine's pool at its first statement and runs prepared statements on the asyncpg driver
connection directly (about half the CPU of SQLAlchemy Core per statement), in autocommit: no
BEGIN or COMMIT, each statement is its own transaction, and the write of a lead is one
statement. `SqlUnitOfWork` gives the catalog commands a SQLAlchemy `AsyncConnection` in one
transaction, rolled back unless committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

from domain.errors import ServiceUnavailable
from infrastructure.engine import as_unavailable, is_unavailable, terminate
from infrastructure.repositories import SqlLeadRepository, SqlSourceRepository


class _UnitOfWork:
    """Deadline and failure handling shared by the lead store and the catalog's unit of work.

    `timeout_s`, when given, bounds everything the unit does with the database together.
    Per-step limits (pool wait, connect, each statement) add up: a request that waits
    almost the whole pool timeout for a connection and then meets a lock would answer after
    twice the configured time. One deadline keeps every answer within it.
    """

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._deadline: asyncio.Timeout | None = None

    async def _open(self) -> None:
        raise NotImplementedError

    async def _release(self, *, broken: bool) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        if self._timeout_s is not None:
            self._deadline = asyncio.timeout(self._timeout_s)
            await self._deadline.__aenter__()
        try:
            await self._open()
        except BaseException as error:
            await self.__aexit__(type(error), error, error.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        expired: TimeoutError | None = None
        if self._deadline is not None:
            # First, before any await: stop the clock, and turn its cancellation into
            # TimeoutError, so the clean-up below cannot be cancelled half-way.
            try:
                await self._deadline.__aexit__(exc_type, exc, tb)
            except TimeoutError as error:
                expired = error
        failure = expired or exc
        await self._release(
            broken=failure is not None
            and (isinstance(failure, asyncio.CancelledError) or is_unavailable(failure))
        )
        if expired is not None:
            raise ServiceUnavailable() from TimeoutError(
                f"no answer from the database within {self._timeout_s:g} s"
            )
        if exc is not None and not isinstance(exc, ServiceUnavailable):
            # Nothing was committed, or the outcome of the last statement is unknown: a retry
            # of the same request is safe (a lead already written is answered as a replay).
            unavailable = as_unavailable(exc)
            if unavailable is not None:
                raise unavailable from exc


def _lost_before_use(error: BaseException) -> bool:
    """A pooled connection that the server dropped (shutdown, restart, idle kill) while it sat
    in the pool fails its first statement with a connection error; a statement the server
    cancelled (timeout) is not that."""
    return is_unavailable(error) and not isinstance(
        error, (asyncpg.QueryCanceledError, asyncio.TimeoutError)
    )


class _StoreConnection:
    """What the lead store's repositories run statements on: the store's pooled asyncpg
    connection, checked out at the first statement."""

    def __init__(self, store: DriverLeadStore) -> None:
        self._store = store

    async def fetchrow(self, query: str, *args: object) -> Any:
        return await self._store.run("fetchrow", query, args)

    async def fetch(self, query: str, *args: object) -> Any:
        return await self._store.run("fetch", query, args)


class DriverLeadStore(_UnitOfWork):
    """Lead ingestion's store: autocommit statements on one pooled asyncpg connection.

    Its first statement is run again, once, on a new connection when the pooled one turns out
    to be lost. That statement may be the lead's write: if the lost connection had written it
    after all, the second run finds the lead and answers it as a replay, the same lead either
    way.
    """

    sources: SqlSourceRepository
    leads: SqlLeadRepository

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        super().__init__(engine, timeout_s)
        self._pooled: Any = None
        self._statements = 0
        connection = _StoreConnection(self)
        self.sources = SqlSourceRepository(connection)
        self.leads = SqlLeadRepository(connection)

    async def _open(self) -> None:
        """Nothing yet: a request rejected before its first statement takes no connection."""

    async def run(self, method: str, query: str, args: tuple[object, ...]) -> Any:
        first = self._statements == 0
        self._statements += 1
        driver = await self._driver()  # pool wait and connect: not retried here
        try:
            return await getattr(driver, method)(query, *args)
        except Exception as error:
            if not first or not _lost_before_use(error):
                raise
        await self._release(broken=True)
        return await getattr(await self._driver(), method)(query, *args)

    async def _driver(self) -> Any:
        if self._pooled is None:
            self._pooled = await self._engine.raw_connection()
        return self._pooled.driver_connection

    async def _release(self, *, broken: bool) -> None:
        pooled, self._pooled = self._pooled, None
        if pooled is None:
            return
        try:
            if broken:
                # Interrupted mid-statement, timed out or disconnected: its state is unknown.
                # Drop it without a round trip; the server ends the session when the socket
                # closes.
                with contextlib.suppress(Exception):
                    terminate(pooled.driver_connection)
                    await greenlet_spawn(pooled.invalidate)
        finally:
            # No transaction is ever open on it: back to the pool as it is.
            with contextlib.suppress(Exception):
                await greenlet_spawn(pooled.close)


class SqlUnitOfWork(_UnitOfWork):
    """A SQLAlchemy `AsyncConnection` in one transaction (the catalog commands use it)."""

    connection: AsyncConnection

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        super().__init__(engine, timeout_s)
        self._connection: AsyncConnection | None = None
        self._committed = False

    async def _open(self) -> None:
        self._connection = self.connection = await self._engine.connect()
        await self.connection.begin()

    async def commit(self) -> None:
        await self.connection.commit()
        self._committed = True

    async def _release(self, *, broken: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if broken:
                with contextlib.suppress(Exception):
                    if not connection.invalidated:
                        terminate((await connection.get_raw_connection()).driver_connection)
                        await connection.invalidate()
            elif not self._committed:
                with contextlib.suppress(Exception):
                    await connection.rollback()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()


class DriverLeadStoreFactory:
    """Lead stores for request handling, each bounded by `timeout_s` as a whole."""

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        self._engine = engine
        self._timeout_s = timeout_s

    def __call__(self) -> DriverLeadStore:
        return DriverLeadStore(self._engine, self._timeout_s)
