"""Units of work: one pooled connection, one transaction, rolled back unless committed.

`DriverUnitOfWork` serves lead ingestion, the hot path: it checks a connection out of the
engine's pool and runs prepared statements on its asyncpg driver connection directly, which
costs about half the CPU of going through SQLAlchemy Core per statement. `SqlUnitOfWork`
gives the catalog commands a SQLAlchemy `AsyncConnection`.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

from domain.errors import ServiceUnavailable
from infrastructure.engine import as_unavailable, is_unavailable, terminate
from infrastructure.repositories import SqlLeadRepository, SqlSourceRepository

_BEGIN_ATTEMPTS = 2


class _UnitOfWork:
    """Deadline and failure handling shared by both kinds of unit.

    `timeout_s`, when given, bounds everything the unit does with the database together.
    Per-step limits (pool wait, connect, each statement) add up: a request that waits
    almost the whole pool timeout for a connection and then meets a lock would answer after
    twice the configured time. One deadline keeps every answer within it.
    """

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._deadline: asyncio.Timeout | None = None
        self._committed = False

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
            # Nothing was committed (or the commit's outcome is unknown): safe to retry.
            unavailable = as_unavailable(exc)
            if unavailable is not None:
                raise unavailable from exc


class DriverUnitOfWork(_UnitOfWork):
    """Lead ingestion's unit: statements go straight to the pooled asyncpg connection."""

    sources: SqlSourceRepository
    leads: SqlLeadRepository

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        super().__init__(engine, timeout_s)
        self._pooled: Any = None
        self._transaction: Any = None

    async def _open(self) -> None:
        for attempt in range(_BEGIN_ATTEMPTS):
            self._pooled = await self._engine.raw_connection()
            driver = self._pooled.driver_connection
            self._transaction = driver.transaction()
            try:
                await self._transaction.start()
                break
            except Exception as error:
                # A pooled connection the server has just dropped (shutdown, restart,
                # idle kill) fails at BEGIN, before anything happened: replace it once.
                if attempt + 1 == _BEGIN_ATTEMPTS or not is_unavailable(error):
                    raise
                self._transaction = None
                await self._release(broken=True)
        self.sources = SqlSourceRepository(driver)
        self.leads = SqlLeadRepository(driver)

    async def commit(self) -> None:
        await self._transaction.commit()
        self._committed = True

    async def _release(self, *, broken: bool) -> None:
        pooled, self._pooled = self._pooled, None
        if pooled is None:
            return
        try:
            if broken:
                # Interrupted mid-statement, timed out or disconnected: its state is unknown
                # and a ROLLBACK could wait on a server that does not answer. Drop it without
                # a round trip; the server rolls the transaction back when the socket closes.
                with contextlib.suppress(Exception):
                    terminate(pooled.driver_connection)
                    await greenlet_spawn(pooled.invalidate)
            elif not self._committed and self._transaction is not None:
                with contextlib.suppress(Exception):
                    await self._transaction.rollback()
        finally:
            with contextlib.suppress(Exception):
                await greenlet_spawn(pooled.close)


class SqlUnitOfWork(_UnitOfWork):
    """A SQLAlchemy `AsyncConnection` in one transaction (the catalog commands use it)."""

    connection: AsyncConnection

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        super().__init__(engine, timeout_s)
        self._connection: AsyncConnection | None = None

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


class DriverUnitOfWorkFactory:
    """Units of work for request handling, each bounded by `timeout_s` as a whole."""

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        self._engine = engine
        self._timeout_s = timeout_s

    def __call__(self) -> DriverUnitOfWork:
        return DriverUnitOfWork(self._engine, self._timeout_s)
