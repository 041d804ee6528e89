"""The database is down when the service starts: it starts anyway, says 503, and recovers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from infrastructure.local_postgres import LocalPostgres
from tests.faults.harness import (
    DB_TIMEOUT_S,
    MARGIN_S,
    client_for,
    database_url,
    post_lead,
    prepare_database,
    running_service,
    stored_leads,
    unique_keys,
)
from tests.support import CatalogSource

pytestmark = pytest.mark.faults


async def test_service_starts_without_its_database_and_recovers_when_it_returns(
    cluster: LocalPostgres, tmp_path: Path
) -> None:
    url = database_url(cluster)
    absent = CatalogSource(1, "key-absent", 1, 1, 1, "absent")
    with running_service(tmp_path, url) as service:
        async with client_for(service) as client:
            assert (await client.get("/healthz")).status_code == 200

            started = time.monotonic()
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["error"]["code"] == "service_unavailable"
            assert ready.headers["retry-after"]
            assert time.monotonic() - started < DB_TIMEOUT_S + MARGIN_S

            down = await asyncio.gather(*(post_lead(client, absent, k) for k in unique_keys(5)))
            for outcome in down:
                assert outcome.status == 503, outcome
                assert outcome.error_code == "service_unavailable"
                assert outcome.retry_after
                assert outcome.elapsed_s < DB_TIMEOUT_S + MARGIN_S

            # The database comes back: started, migrated, given a catalog. No service restart.
            await asyncio.to_thread(cluster.start)
            source = await prepare_database(cluster)

            assert (await client.get("/readyz")).status_code == 200
            keys = unique_keys(5)
            up = [await post_lead(client, source, key) for key in keys]
            assert [o.status for o in up] == [201] * 5
            again = [await post_lead(client, source, key) for key in keys]
            assert [o.status for o in again] == [200] * 5
            assert [o.lead_id for o in again] == [o.lead_id for o in up]

    stored = await stored_leads(url)
    assert stored == {o.lead_id: 1 for o in up}
    assert "Traceback" not in service.logs()
