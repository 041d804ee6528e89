"""The database turns read-only (a failover in progress, a standby, disk-space protection):
writes fail, nothing is committed, so the answer is a 503 to retry, not a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.local_postgres import LocalPostgres
from tests.faults.harness import (
    client_for,
    connect,
    database_url,
    post_lead,
    prepare_database,
    running_service,
    stored_leads,
    unique_keys,
)

pytestmark = pytest.mark.faults


async def _set_read_only(url: str, read_only: bool) -> None:
    connection = await connect(url)
    try:
        value = "on" if read_only else "off"
        await connection.execute(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


async def test_read_only_database_answers_503_and_recovers(
    cluster: LocalPostgres, tmp_path: Path
) -> None:
    cluster.start()
    source = await prepare_database(cluster)
    url = database_url(cluster)
    keys = unique_keys(4)
    with running_service(tmp_path, url, db_pool_size=2) as service:
        async with client_for(service) as client:
            assert (await post_lead(client, source, keys[0])).status == 201
            await _set_read_only(url, True)
            refused = [await post_lead(client, source, key) for key in keys]
            await _set_read_only(url, False)
            retried = [await post_lead(client, source, key) for key in keys]
    # Even a replay is refused: INSERT … ON CONFLICT is a write whatever it finds.
    assert [(o.status, o.error_code) for o in refused] == [(503, "service_unavailable")] * 4
    assert [o.status for o in retried] == [200, 201, 201, 201]
    assert len(await stored_leads(url)) == 4
    assert "Traceback" not in service.logs()
