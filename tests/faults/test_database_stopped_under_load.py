"""The database stops in the middle of a load: no 500, no hang, no lost or duplicated lead."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infrastructure.local_postgres import LocalPostgres
from tests.faults.harness import (
    Load,
    assert_no_contact_data,
    assert_no_server_errors_or_hangs,
    client_for,
    database_url,
    prepare_database,
    run_load,
    running_service,
    stored_leads,
    unique_keys,
)

pytestmark = pytest.mark.faults

REQUESTS = 200
CONCURRENCY = 8
STOP_AFTER = 60  # completed requests before the database goes down
UNAVAILABLE = {503: "service_unavailable"}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_database_stopped_mid_load_loses_and_duplicates_nothing(
    cluster: LocalPostgres, tmp_path: Path, mode: str
) -> None:
    cluster.start()
    source = await prepare_database(cluster)
    url = database_url(cluster)
    keys = unique_keys(REQUESTS)
    with running_service(tmp_path, url, db_pool_size=4) as service:
        async with client_for(service) as client:
            halfway = asyncio.Event()
            load = asyncio.create_task(
                run_load(client, source, keys, CONCURRENCY, halfway, STOP_AFTER)
            )
            await halfway.wait()
            await asyncio.to_thread(cluster.stop, mode)
            first: Load = await load
            assert_no_server_errors_or_hangs(first, UNAVAILABLE)
            assert first.failed, "the database went down too late to matter"

            await asyncio.to_thread(cluster.start)
            stored = await stored_leads(url)
            # Every 2xx is a committed row; a 503 may or may not have committed (unknown
            # outcome of an interrupted COMMIT) — that is what the retry below settles.
            assert {o.lead_id for o in first.succeeded} <= stored.keys()

            retry = await run_load(client, source, keys, CONCURRENCY)
            assert_no_server_errors_or_hangs(retry, UNAVAILABLE)

    assert retry.by_status().keys() <= {200, 201}, retry.by_status()
    for before, after in zip(first.outcomes, retry.outcomes, strict=True):
        if before.succeeded:
            assert (after.status, after.lead_id) == (200, before.lead_id)
    stored = await stored_leads(url)
    assert len(stored) == REQUESTS
    assert set(stored.values()) == {1}
    assert stored.keys() == {o.lead_id for o in retry.outcomes}
    logs = service.logs()
    assert "Traceback" not in logs
    assert_no_contact_data(logs, source, keys)
    print(f"\n{mode} stop: first pass {first.by_status()}, retry {retry.by_status()}")
