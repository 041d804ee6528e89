"""Database round trips per request (SPEC §9): ≤ 4 for a new lead, ≤ 5 for a replay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.support import Catalog


class RoundTrips:
    """What the service's pooled asyncpg connections send: each query is one round trip."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.connections: set[Any] = set()

    def log(self, record: Any) -> None:
        self.sent.append(record.query.split(None, 1)[0].rstrip(";").upper())

    def watch(self, dbapi_connection: Any, record: object, proxy: object) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(self.log)
        self.connections.add(driver)


@pytest.fixture
def round_trips(app: Any) -> Iterator[RoundTrips]:
    engine = app.state.application.engine.sync_engine
    counter = RoundTrips()
    event.listen(engine, "checkout", counter.watch)
    yield counter
    event.remove(engine, "checkout", counter.watch)
    for driver in counter.connections:
        driver.remove_query_logger(counter.log)


async def _settled(round_trips: RoundTrips) -> list[str]:
    await asyncio.sleep(0.01)  # asyncpg hands query records to loggers via call_soon
    sent = list(round_trips.sent)
    round_trips.sent.clear()
    return sent


@pytest.mark.parametrize("selector", ["source_id", "source_key", "mapping"])
async def test_new_lead_and_replay_round_trips(
    client: httpx.AsyncClient, catalog: Catalog, round_trips: RoundTrips, selector: str
) -> None:
    source = await catalog.source()
    headers = {}
    body: dict[str, object] = {"email": "count@x.co", "idempotency_key": "count"}
    if selector == "mapping":
        headers["Host"] = f"rt-{source.code}.example.com"
        await catalog.mapping(source.source_id, headers["Host"])
    else:
        body[selector] = getattr(source, selector)
    # Warm the connections' statement caches: a connection prepares each statement once.
    for warm in range(3):
        await client.post("/api/leads", json={**body, "idempotency_key": f"warm-{warm}"})
    await _settled(round_trips)

    response = await client.post("/api/leads", json=body, headers=headers)
    assert response.status_code == 201
    assert await _settled(round_trips) == ["BEGIN", "SELECT", "INSERT", "COMMIT"]

    response = await client.post("/api/leads", json=body, headers=headers)
    assert response.status_code == 200
    assert await _settled(round_trips) == ["BEGIN", "SELECT", "INSERT", "SELECT", "COMMIT"]


async def test_a_rejected_lead_rolls_back(
    client: httpx.AsyncClient, round_trips: RoundTrips
) -> None:
    body = {"source_key": "nobody-has-this", "email": "x@y.z"}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 400
    assert await _settled(round_trips) == ["BEGIN", "SELECT", "ROLLBACK"]
