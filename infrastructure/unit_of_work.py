"""The unit of work: one pooled connection, one transaction, rolled back unless committed."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.errors import ServiceUnavailable
from infrastructure.database import is_unavailable, terminate
from infrastructure.repositories import SqlLeadRepository, SqlSourceRepository


class SqlUnitOfWork:
    """`timeout_s`, when given, bounds everything the unit does with the database together.

    Per-step limits (pool wait, connect, each statement) add up: a request that waits
    almost the whole pool timeout for a connection and then meets a lock would answer after
    twice the configured time. One deadline keeps every answer within it.
    """

    sources: SqlSourceRepository
    leads: SqlLeadRepository
    connection: AsyncConnection

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._deadline: asyncio.Timeout | None = None
        self._connection: AsyncConnection | None = None
        self._committed = False

    async def __aenter__(self) -> SqlUnitOfWork:
        if self._timeout_s is not None:
            self._deadline = asyncio.timeout(self._timeout_s)
            await self._deadline.__aenter__()
        try:
            self._connection = self.connection = await self._engine.connect()
            await self.connection.begin()
        except BaseException as error:
            await self.__aexit__(type(error), error, error.__traceback__)
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
        if exc is not None and not isinstance(exc, ServiceUnavailable) and is_unavailable(exc):
            # Nothing was committed (or the commit's outcome is unknown): safe to retry.
            raise ServiceUnavailable() from exc

    async def _release(self, *, broken: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if broken:
                # Interrupted mid-statement, timed out or disconnected: its state is unknown
                # and a ROLLBACK could wait on a server that does not answer. Drop it without
                # a round trip; the server rolls the transaction back when the socket closes.
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


class SqlUnitOfWorkFactory:
    """Units of work for request handling, each bounded by `timeout_s` as a whole.

    Without `timeout_s`, the engine's pool timeout is the budget: `create_engine` sets it to
    `LEADS_DB_TIMEOUT_S`, the time a request may wait on the database.
    """

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        self._engine = engine
        self._timeout_s = timeout_s if timeout_s is not None else _pool_timeout(engine)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._timeout_s)


def _pool_timeout(engine: AsyncEngine) -> float | None:
    timeout = getattr(engine.pool, "timeout", None)
    return float(timeout()) if callable(timeout) else None
