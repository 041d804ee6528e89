"""End to end against real uvicorn processes: one process and `--workers 3`."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.partitioned_leads import LEADS_LAYOUTS
from tests.support import Catalog, Service, running_service, unique_host

# Against the plain and the hash-partitioned `leads` (tests/partitioned_leads.py).
pytestmark = LEADS_LAYOUTS


def test_health_and_envelope(service: Service) -> None:
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok"}
    response = httpx.get(f"{service.base_url}/api/leads")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    schema = httpx.get(f"{service.base_url}/openapi.json").json()
    assert "/api/leads" in schema["paths"]


async def test_posting_url_end_to_end(service: Service, catalog: Catalog) -> None:
    source = await catalog.source()
    host = unique_host()
    await catalog.mapping(source.source_id, host, "/api/leads/partner")
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        response = await client.post(
            "/api/leads/partner",
            data={"email": "e2e@x.co", "phone": "4155552671"},
            headers={"Host": f"{host}:8000"},
        )
    assert response.status_code == 201, response.text
    assert response.json()["source_id"] == source.source_id


async def _race(base_url: str, body: dict[str, object]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        return await asyncio.gather(*(client.post("/api/leads", json=body) for _ in range(20)))


async def _assert_one_lead(
    responses: list[httpx.Response], engine: AsyncEngine, source_id: int
) -> None:
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert all(
        r.headers.get("Idempotent-Replayed") == "true" for r in responses if r.status_code == 200
    )
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT count(*) FROM leads WHERE source_id = :s"), {"s": source_id}
            )
        ).scalar_one()
    assert rows == 1


@pytest.mark.parametrize("derived", [False, True])
async def test_twenty_concurrent_identical_posts_one_process(
    service: Service, catalog: Catalog, engine: AsyncEngine, derived: bool
) -> None:
    source = await catalog.source()
    body: dict[str, object] = {"source_id": source.source_id, "email": "race@x.co"}
    if not derived:
        body["idempotency_key"] = "race-1"
    await _assert_one_lead(await _race(service.base_url, body), engine, source.source_id)


async def test_twenty_concurrent_identical_posts_three_workers(
    database_url: str, catalog: Catalog, engine: AsyncEngine
) -> None:
    with running_service(database_url, "--workers", "3", "--no-access-log") as service:
        for derived in (False, True):
            source = await catalog.source()
            body: dict[str, object] = {"source_key": source.source_key, "phone": "4155552671"}
            if not derived:
                body["idempotency_key"] = "race-3"
            await _assert_one_lead(await _race(service.base_url, body), engine, source.source_id)
