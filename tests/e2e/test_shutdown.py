"""SIGTERM during a load: requests in flight finish, every 2xx is a row, the rest retry once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure import migrate
from infrastructure.settings import to_asyncpg_url
from tests.faults.harness import (
    client_for,
    run_load,
    running_service,
    stored_leads,
    table_locked,
    unique_keys,
)
from tests.support import Catalog, posix_only

pytestmark = posix_only
REQUESTS = 200
CONCURRENCY = 8
HOLD_AFTER = 50  # completed requests before the next ones are held in flight


async def _wait_for_blocked_inserts(lock_holder: asyncpg.Connection, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = await lock_holder.fetchval(
            "SELECT count(*) FROM pg_locks WHERE relation = 'leads'::regclass AND NOT granted"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {waiting} requests reached the database")


async def test_sigterm_lets_in_flight_requests_finish_and_loses_nothing(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = await asyncio.to_thread(new_database)  # it runs its own event loop
    await migrate.upgrade(url)
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        source = await Catalog(engine).source()
    finally:
        await engine.dispose()
    keys = unique_keys(REQUESTS)

    with running_service(tmp_path, url, db_timeout_s=10) as service:
        async with client_for(service, timeout_s=20) as client:
            hold = asyncio.Event()
            load = asyncio.create_task(
                run_load(client, source, keys, CONCURRENCY, hold, HOLD_AFTER)
            )
            await hold.wait()
            # SHARE blocks INSERT only: the next requests classify, then wait in the database.
            async with table_locked(url, "leads", "SHARE") as lock_holder:
                await _wait_for_blocked_inserts(lock_holder, CONCURRENCY)
                service.signal(signal.SIGTERM)
                terminated_at = time.monotonic()
                await asyncio.sleep(0.5)
                assert service.process.poll() is None, "exited with requests in flight"
            first = await load
            # After a graceful shutdown uvicorn re-raises the signal it caught.
            assert await asyncio.to_thread(service.wait, 15) == -signal.SIGTERM
    assert "Application shutdown complete." in service.logs()

    in_flight = [o for o in first.outcomes if o.started_at < terminated_at < o.finished_at]
    assert len(in_flight) == CONCURRENCY
    assert {o.status for o in in_flight} == {201}, [o for o in in_flight if o.status != 201]
    # Whatever did not get an answer never reached the application (the listener was closed).
    for outcome in first.failed:
        assert outcome.status is None and outcome.started_at > terminated_at, outcome
    stored = await stored_leads(url)
    assert stored == {o.lead_id: 1 for o in first.succeeded}

    with running_service(tmp_path, url) as service:
        async with client_for(service) as client:
            retry = await run_load(client, source, keys, CONCURRENCY)
    assert retry.by_status().keys() <= {200, 201}, retry.by_status()
    for before, after in zip(first.outcomes, retry.outcomes, strict=True):
        expected = (200, before.lead_id) if before.succeeded else (201, after.lead_id)
        assert (after.status, after.lead_id) == expected
    stored = await stored_leads(url)
    assert len(stored) == REQUESTS and set(stored.values()) == {1}
    print(f"\nSIGTERM: first pass {first.by_status()}, retry {retry.by_status()}")
