"""The lead store without a database: when it takes a connection, and which failure of its
first statement it runs again on a new connection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from domain.errors import ServiceUnavailable
from infrastructure.lead_store import SqlLeadStore, open_lead_store
from queries.leads import LEAD_BY_ID, GetLead

Q = LEAD_BY_ID
LEAD_ID = uuid.UUID(int=1)


@dataclass
class FakeDriver:
    """An asyncpg connection whose next `fetchrow` calls fail with `failures`, in order."""

    failures: list[BaseException] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    terminated: bool = False

    async def fetchrow(self, query: str, *args: object) -> Any:
        self.queries.append(query)
        if self.failures:
            raise self.failures.pop(0)
        return None  # no such lead

    def terminate(self) -> None:
        self.terminated = True


@dataclass
class FakePooled:
    driver_connection: FakeDriver
    invalidated: bool = False
    closed: bool = False

    def invalidate(self) -> None:
        self.invalidated = True

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeEngine:
    """Hands out the given connections in order."""

    connections: list[FakePooled]
    handed_out: int = 0
    checkout_failure: BaseException | None = None
    checkouts: int = 0

    async def raw_connection(self) -> FakePooled:
        self.checkouts += 1
        if self.checkout_failure is not None:
            raise self.checkout_failure
        pooled = self.connections[self.handed_out]
        self.handed_out += 1
        return pooled


def _store(*drivers: FakeDriver) -> tuple[Any, FakeEngine]:
    engine = FakeEngine([FakePooled(driver) for driver in drivers])
    return open_lead_store(engine, timeout_s=5), engine  # type: ignore[arg-type]


async def _ask(store: SqlLeadStore, source_id: int = 7) -> None:
    assert await store.get_lead(GetLead(source_id, LEAD_ID)) is None


async def test_no_statement_takes_no_connection() -> None:
    store, engine = _store(FakeDriver())
    async with store:
        pass
    assert engine.handed_out == 0


async def test_statements_share_one_connection_returned_to_the_pool() -> None:
    store, engine = _store(FakeDriver(), FakeDriver())
    async with store as open_store:
        await _ask(open_store)
        await _ask(open_store)
    assert engine.handed_out == 1
    first = engine.connections[0]
    assert first.driver_connection.queries == [Q, Q]
    assert (first.closed, first.invalidated) == (True, False)


async def test_a_first_statement_on_a_lost_connection_runs_again_on_a_new_one() -> None:
    lost = FakeDriver([asyncpg.ConnectionDoesNotExistError("connection was closed")])
    store, engine = _store(lost, FakeDriver())
    async with store as open_store:
        await _ask(open_store)
    dropped, replacement = engine.connections
    assert (dropped.invalidated, lost.terminated, dropped.closed) == (True, True, True)
    assert replacement.driver_connection.queries == [Q]
    assert (replacement.closed, replacement.invalidated) == (True, False)


@pytest.mark.parametrize(
    "failure",
    [asyncpg.QueryCanceledError("statement timeout"), asyncpg.UniqueViolationError("dup")],
    ids=lambda error: type(error).__name__,
)
async def test_a_first_statement_that_failed_otherwise_is_not_run_again(
    failure: BaseException,
) -> None:
    store, engine = _store(FakeDriver([failure]), FakeDriver())
    with pytest.raises((ServiceUnavailable, type(failure))):
        async with store as open_store:
            await _ask(open_store)
    assert engine.handed_out == 1


async def test_a_later_statement_on_a_lost_connection_is_a_503() -> None:
    driver = FakeDriver()
    store, engine = _store(driver, FakeDriver())
    with pytest.raises(ServiceUnavailable):
        async with store as open_store:
            await _ask(open_store)
            driver.failures.append(asyncpg.ConnectionDoesNotExistError("closed"))
            await _ask(open_store)
    assert engine.handed_out == 1
    assert engine.connections[0].invalidated


async def test_a_pool_timeout_is_a_503_not_a_second_wait() -> None:
    store, engine = _store(FakeDriver(), FakeDriver())
    engine.checkout_failure = sa_exc.TimeoutError("pool exhausted")
    with pytest.raises(ServiceUnavailable):
        async with store as open_store:
            await _ask(open_store)
    assert engine.checkouts == 1
