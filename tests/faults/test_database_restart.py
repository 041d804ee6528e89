"""The database restarts while the service is idle: pooled connections are dead, and the
next requests must not pay for it (no 503 for a database that is up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infrastructure.local_postgres import LocalPostgres
from tests.faults.harness import (
    client_for,
    database_url,
    post_new_leads,
    prepare_database,
    running_service,
    stored_leads,
)

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_restart_while_idle_costs_no_request(
    cluster: LocalPostgres, tmp_path: Path, mode: str
) -> None:
    cluster.start()
    source = await prepare_database(cluster)
    url = database_url(cluster)
    with running_service(tmp_path, url, db_pool_size=4) as service:
        async with client_for(service) as client:
            # Fill the pool: four connections, all idle when the database goes away.
            warm = await post_new_leads(client, source, 8)
            assert {o.status for o in warm} == {201}
            await asyncio.to_thread(cluster.stop, mode)
            await asyncio.to_thread(cluster.start)
            after = await post_new_leads(client, source, 8)
    assert [o.status for o in after] == [201] * 8
    assert len(await stored_leads(url)) == 16
    assert "Traceback" not in service.logs()
