"""The async engine, and database failures raised as `ServiceUnavailable` where it is one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infrastructure.database_problems import as_unavailable
from infrastructure.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    timeout = settings.db_timeout_s
    connect_args: dict[str, object] = {
        "timeout": timeout,
        "command_timeout": timeout,
        "server_settings": {
            "application_name": "leads",
            "statement_timeout": str(int(timeout * 1000)),
        },
    }
    if not settings.db_statement_cache:
        # Transaction-pooling PgBouncer: the next transaction may run on another server
        # connection, so cache no statement and use only the unnamed one (asyncpg re-parses
        # it with every execution). Named statements, even uniquely named, would outlive
        # their transaction: asyncpg closes them lazily, from whatever server connection
        # PgBouncer lends next, so they pile up on the server. PgBouncer rejects the
        # statement_timeout startup parameter; set it on the role or database instead.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["server_settings"] = {"application_name": "leads"}
    engine = create_async_engine(
        settings.async_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=timeout,
        pool_recycle=3600,
        # The most recently used connection first: its prepared statements are warm, and
        # connections beyond what the load needs stay idle.
        pool_use_lifo=True,
        # Errors are logged (503 warnings, 500 traces); their SQL parameters are the posted
        # email, phone and source_key, which must not reach the logs.
        hide_parameters=True,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "handle_error", _terminate_before_invalidating)
    event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(dbapi_connection: Any, record: object, proxy: object) -> None:
    # A server that restarted (or dropped the session) has closed the socket of an idle
    # pooled connection, and asyncpg has seen it: hand out a new connection rather than
    # fail the request about to use it. No round trip, unlike pool_pre_ping.
    is_closed = getattr(getattr(dbapi_connection, "driver_connection", None), "is_closed", None)
    if callable(is_closed) and is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


def terminate(driver_connection: object) -> None:
    # The socket closed now, without a round trip to the server.
    abort = getattr(driver_connection, "terminate", None)
    if callable(abort):
        abort()


def _terminate_before_invalidating(context: ExceptionContext) -> None:
    # SQLAlchemy invalidates a connection that was interrupted (a cancelled task: our
    # per-request deadline) or lost, and its asyncpg adapter first tries a polite close that
    # waits up to 2 s for the server. A server that does not answer would turn a deadline
    # into deadline + 2 s; the transaction dies with the socket either way.
    if context.is_disconnect and context.connection is not None:
        with contextlib.suppress(Exception):
            terminate(context.connection.connection.driver_connection)


@asynccontextmanager
async def unavailable_on_db_failure() -> AsyncIterator[None]:
    try:
        yield
    except Exception as error:
        unavailable = as_unavailable(error)
        if unavailable is None or unavailable is error:
            raise
        raise unavailable from error
