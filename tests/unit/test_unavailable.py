"""Which database failures are a 503 to retry (infrastructure.database_problems.is_unavailable)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from infrastructure.database_problems import is_unavailable


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.DeadlockDetectedError("deadlock"),
        asyncpg.SerializationError("serialization"),
        asyncpg.DiskFullError("disk full"),
        asyncpg.TooManyConnectionsError("too many"),
        asyncpg.ReadOnlySQLTransactionError("read only"),
        asyncpg.QueryCanceledError("statement timeout"),
        asyncpg.AdminShutdownError("shutdown"),
        asyncpg.CannotConnectNowError("starting up"),
        asyncpg.ConnectionDoesNotExistError("closed"),
        asyncpg.InternalClientError("another operation is in progress"),
        ConnectionRefusedError(),
        TimeoutError(),
        sa_exc.TimeoutError("pool exhausted"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_failures_to_retry(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate"),
        asyncpg.CheckViolationError("check"),
        asyncpg.UndefinedTableError("no such table"),
        ValueError("a bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_failures_that_are_bugs(error: BaseException) -> None:
    assert not is_unavailable(error)
