"""The ingest handler's lead store: autocommit statements on one pooled asyncpg connection, under
one deadline.

The connection is checked out of the engine's pool at the first statement (a request rejected
before any lookup takes none) and the statements run as prepared statements on the asyncpg
driver connection itself (about half the CPU of SQLAlchemy Core per statement), in autocommit:
no BEGIN or COMMIT, each statement is its own transaction, and the write of a lead is one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from domain.errors import ServiceUnavailable
from infrastructure.database_problems import as_unavailable, is_unavailable
from infrastructure.engine import terminate
from infrastructure.repositories import SqlLeadRepository, SqlSourceRepository
from queries.leads import GetLeadHandler


class PooledConnection:
    """The store's connection. Its first statement is run again, once, on a new connection
    when the pooled one turns out lost; that may be the lead's write: if the lost connection
    had written it after all, the second run finds the lead and answers it as a replay."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pooled: Any = None
        self._used = False

    async def fetchrow(self, query: str, *args: object) -> Any:
        return await self._run("fetchrow", query, args)

    async def fetch(self, query: str, *args: object) -> Any:
        return await self._run("fetch", query, args)

    async def _run(self, method: str, query: str, args: tuple[object, ...]) -> Any:
        first, self._used = not self._used, True
        driver = await self._driver()  # pool wait and connect: not retried here
        try:
            return await getattr(driver, method)(query, *args)
        except Exception as error:
            if not first or not _lost_before_use(error):
                raise
        await self.release(broken=True)
        return await getattr(await self._driver(), method)(query, *args)

    async def _driver(self) -> Any:
        if self._pooled is None:
            self._pooled = await self._engine.raw_connection()
        return self._pooled.driver_connection

    async def release(self, *, broken: bool) -> None:
        pooled, self._pooled = self._pooled, None
        if pooled is None:
            return
        if not broken:
            # No transaction is ever open on it: back to the pool as it is. That awaits
            # nothing, so it runs without the greenlet SQLAlchemy's async API would start for
            # it (with a frame stack of its own, mapped and unmapped each time).
            with contextlib.suppress(Exception):
                pooled.close()
            return
        try:
            # Interrupted mid-statement, timed out or disconnected: its state is unknown.
            # Drop it without a round trip; the server ends the session when the socket
            # closes.
            with contextlib.suppress(Exception):
                terminate(pooled.driver_connection)
                await greenlet_spawn(pooled.invalidate)
        finally:
            with contextlib.suppress(Exception):
                await greenlet_spawn(pooled.close)


def _lost_before_use(error: BaseException) -> bool:
    """A pooled connection that the server dropped (shutdown, restart, idle kill) while it sat
    in the pool fails its first statement with a connection error; a statement the server
    cancelled (timeout) is not that."""
    return is_unavailable(error) and not isinstance(
        error, (asyncpg.QueryCanceledError, asyncio.TimeoutError)
    )


class SqlLeadStore:
    """`handlers.ingest_lead_ports.LeadStore` on one `PooledConnection`."""

    def __init__(self, connection: PooledConnection) -> None:
        self.sources = SqlSourceRepository(connection)
        self.leads = SqlLeadRepository(connection)
        self.get_lead = GetLeadHandler(connection)


@asynccontextmanager
async def open_lead_store(
    engine: AsyncEngine, timeout_s: float | None = None
) -> AsyncIterator[SqlLeadStore]:
    """A lead store whose whole use is bounded by `timeout_s`. Per-step limits (pool wait,
    connect, each statement) add up: a request that waits almost the whole pool timeout for a
    connection and then meets a lock would answer after twice the configured time. One
    deadline keeps every answer within it."""
    connection = PooledConnection(engine)
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            yield SqlLeadStore(connection)
    except BaseException as error:
        # The deadline has already stopped and turned its cancellation into TimeoutError, so
        # this clean-up cannot be cancelled half-way.
        broken = isinstance(error, asyncio.CancelledError) or is_unavailable(error)
        await connection.release(broken=broken)
        if isinstance(error, TimeoutError) and deadline.expired():
            raise ServiceUnavailable() from TimeoutError(
                f"no answer from the database within {timeout_s:g} s"
            )
        # Nothing was committed, or the outcome of the last statement is unknown: a retry of
        # the same request is safe (a lead already written is answered as a replay).
        unavailable = as_unavailable(error)
        if unavailable is None or unavailable is error:
            raise
        raise unavailable from error
    await connection.release(broken=False)
