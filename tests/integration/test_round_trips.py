"""Database round trips per request: 1 for a new lead, 2 for a replay (SPEC §11, §9).

A new lead is one autocommit statement (WITH … INSERT …) on a warm catalog cache; a replay adds
the read-side query. A cache miss adds the catalog read; a rejection costs only the database
reads that confirm it.
"""

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
        self.checkouts = 0

    def log(self, record: Any) -> None:
        self.sent.append(record.query.split(None, 1)[0].rstrip(";").upper())

    def watch(self, dbapi_connection: Any, record: object, proxy: object) -> None:
        self.checkouts += 1
        driver = dbapi_connection.driver_connection
        if driver not in self.connections:
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
    # Warm the connections' statement caches (a connection prepares each statement once) and
    # the process's catalog cache.
    for warm in range(3):
        await client.post(
            "/api/leads", json={**body, "idempotency_key": f"warm-{warm}"}, headers=headers
        )
    await _settled(round_trips)

    response = await client.post("/api/leads", json=body, headers=headers)
    assert response.status_code == 201
    assert await _settled(round_trips) == ["WITH"]

    response = await client.post("/api/leads", json=body, headers=headers)
    assert response.status_code == 200
    assert await _settled(round_trips) == ["WITH", "SELECT"]


async def test_a_cold_catalog_cache_adds_the_source_read(
    client: httpx.AsyncClient, catalog: Catalog, round_trips: RoundTrips
) -> None:
    source = await catalog.source()
    await _settled(round_trips)
    body = {"source_id": source.source_id, "email": "cold@x.co", "idempotency_key": "cold"}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 201
    assert await _settled(round_trips) == ["SELECT", "WITH"]


async def test_a_stale_catalog_cache_costs_one_more_read_and_write(
    client: httpx.AsyncClient, catalog: Catalog, round_trips: RoundTrips
) -> None:
    source = await catalog.source()
    body = {"source_id": source.source_id, "email": "stale@x.co"}
    await client.post("/api/leads", json={**body, "idempotency_key": "warm"})
    await catalog.vertical()  # any catalog write
    await _settled(round_trips)
    response = await client.post("/api/leads", json={**body, "idempotency_key": "stale"})
    assert response.status_code == 201
    assert await _settled(round_trips) == ["WITH", "SELECT", "WITH"]


async def test_a_rejected_lead_costs_one_read_and_holds_no_transaction(
    client: httpx.AsyncClient, round_trips: RoundTrips
) -> None:
    body = {"source_key": "nobody-has-this", "email": "x@y.z"}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 400
    assert await _settled(round_trips) == ["SELECT"]


async def test_a_rejection_from_cached_answers_is_confirmed_by_one_read(
    client: httpx.AsyncClient, catalog: Catalog, round_trips: RoundTrips
) -> None:
    source = await catalog.source()
    body = {"source_id": source.source_id, "email": "conf@x.co", "idempotency_key": "conf"}
    await client.post("/api/leads", json=body)
    await _settled(round_trips)
    response = await client.post("/api/leads", json={**body, "source_key": "not-its-key"})
    assert response.status_code == 400
    assert await _settled(round_trips) == ["SELECT"]


async def test_a_rejection_before_any_lookup_takes_no_connection(
    client: httpx.AsyncClient, round_trips: RoundTrips
) -> None:
    response = await client.post("/api/leads", json={"source_key": "Not A Key!", "email": "x@y.z"})
    assert response.status_code == 400
    assert await _settled(round_trips) == []
    assert round_trips.checkouts == 0
