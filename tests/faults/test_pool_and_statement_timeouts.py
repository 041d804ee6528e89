"""A database that does not answer (a lock, an exhausted pool, a frozen server): every
request still ends within LEADS_DB_TIMEOUT_S, as a 503, and the service recovers by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from infrastructure.engine import create_engine
from infrastructure.local_postgres import LocalPostgres
from infrastructure.settings import Settings
from tests.faults.harness import (
    DB_TIMEOUT_S,
    MARGIN_S,
    Outcome,
    client_for,
    database_url,
    post_lead,
    post_new_leads,
    prepare_database,
    running_service,
    stored_leads,
    table_locked,
    unique_keys,
)
from tests.support import CatalogSource, posix_only

pytestmark = [pytest.mark.faults, posix_only]

# Arrivals spread over more than the timeout: a request that waited most of the timeout
# for the pool must not then wait a whole statement timeout again.
STAGGER_S = 0.25
ARRIVALS = 8


def _postgres_pids(cluster: LocalPostgres) -> list[int]:
    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [postmaster, *map(int, children)]


@contextmanager
def frozen(cluster: LocalPostgres) -> Iterator[None]:
    """SIGSTOP the whole server: sockets stay open and nothing answers, like a partition."""
    pids = _postgres_pids(cluster)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def staggered(client: httpx.AsyncClient, source: CatalogSource) -> list[Outcome]:
    async def one(key: str, delay_s: float) -> Outcome:
        await asyncio.sleep(delay_s)
        return await post_lead(client, source, key)

    keys = unique_keys(ARRIVALS)
    return list(await asyncio.gather(*(one(k, STAGGER_S * i) for i, k in enumerate(keys))))


def assert_all_503_in_time(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        assert (outcome.status, outcome.error_code) == (503, "service_unavailable"), outcome
        assert outcome.retry_after, outcome
        assert outcome.elapsed_s < DB_TIMEOUT_S + MARGIN_S, outcome


async def test_exhausted_pool_answers_503_in_time_and_recovers(
    cluster: LocalPostgres, tmp_path: Path
) -> None:
    cluster.start()
    source = await prepare_database(cluster)
    url = database_url(cluster)
    with running_service(tmp_path, url, db_pool_size=1) as service:
        async with client_for(service) as client:
            async with table_locked(url, "sources"):
                # The first request holds the only connection, blocked on the lock; the
                # others queue for the pool, then meet the lock in turn.
                assert_all_503_in_time(await staggered(client, source))
            recovered = await post_lead(client, source, unique_keys(1)[0])
            assert recovered.status == 201
    assert await stored_leads(url) == {recovered.lead_id: 1}
    assert "Traceback" not in service.logs()


async def test_blocked_insert_ends_in_503_within_the_timeout_then_retries_once(
    cluster: LocalPostgres, tmp_path: Path
) -> None:
    cluster.start()
    source = await prepare_database(cluster)
    url = database_url(cluster)
    key = unique_keys(1)[0]
    with running_service(tmp_path, url) as service:
        async with client_for(service) as client:
            async with table_locked(url, "leads"):
                outcome = await post_lead(client, source, key)
            assert (outcome.status, outcome.error_code) == (503, "service_unavailable")
            assert DB_TIMEOUT_S * 0.9 < outcome.elapsed_s < DB_TIMEOUT_S + MARGIN_S, outcome
            # The write is one autocommit statement: the server may still have completed it
            # once the lock went away. A retry with the same key gets the one lead either way.
            retried = await post_lead(client, source, key)
            assert retried.status in (200, 201)
    assert await stored_leads(url) == {retried.lead_id: 1}
    assert "Traceback" not in service.logs()


async def test_sessions_carry_the_statement_timeout(cluster: LocalPostgres) -> None:
    """The server stops a statement even when the client that started it is gone."""
    cluster.start()
    await prepare_database(cluster)
    engine = create_engine(Settings(database_url=database_url(cluster), db_timeout_s=1.5))
    try:
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("SHOW statement_timeout")).scalar() == (
                "1500ms"
            )
    finally:
        await engine.dispose()


async def test_frozen_database_answers_503_in_time_and_recovers(
    cluster: LocalPostgres, tmp_path: Path
) -> None:
    cluster.start()
    source = await prepare_database(cluster)
    url = database_url(cluster)
    with running_service(tmp_path, url, db_pool_size=2) as service:
        async with client_for(service) as client:
            # Warm the pool: the frozen server then holds pooled connections mid-request.
            warm = await post_new_leads(client, source, 4)
            assert {o.status for o in warm} == {201}
            with frozen(cluster):
                unanswered = await staggered(client, source)
            assert_all_503_in_time(unanswered)
            after = await post_new_leads(client, source, 8)
            assert {o.status for o in after} == {201}
            # A 503'd write may have been completed by the server once it thawed (one
            # autocommit statement): retried with the same key, each is one lead.
            retried = [await post_lead(client, source, o.key) for o in unanswered]
            assert {o.status for o in retried} <= {200, 201}
    succeeded = [*warm, *after, *retried]
    assert await stored_leads(url) == {o.lead_id: 1 for o in succeeded}
    assert len(succeeded) == 20
    assert "Traceback" not in service.logs()
