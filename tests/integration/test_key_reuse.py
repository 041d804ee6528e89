"""`key_reuse: reject` over HTTP: twenty concurrent posts of one client key with two payloads
make exactly one lead, every request with the other payload gets 422 and stores nothing;
round trips stay 1 per new lead and 2 per replay; leads stored without a fingerprint replay."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Catalog, CatalogSource


async def rejecting_source(catalog: Catalog) -> CatalogSource:
    source = await catalog.source()
    await catalog.execute(
        "UPDATE sources SET key_reuse = 'reject' WHERE source_id = :id", id=source.source_id
    )
    return source


async def post(
    client: httpx.AsyncClient, source: CatalogSource, key: str, **fields: object
) -> httpx.Response:
    return await client.post(
        "/api/leads",
        json={"source_id": source.source_id, **fields},
        headers={"Idempotency-Key": key},
    )


async def stored(engine: AsyncEngine, source: CatalogSource) -> list[Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT email, fingerprint FROM leads WHERE source_id = :s"),
            {"s": source.source_id},
        )
        return list(rows)


async def test_twenty_concurrent_posts_of_one_key_with_two_payloads_make_one_lead(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await rejecting_source(catalog)
    key = f"order-{uuid.uuid4().hex[:8]}"
    payloads = [{"email": "jane@example.com"}, {"email": "sam@example.com"}]
    answers = await asyncio.gather(
        *(post(client, source, key, **payloads[i % 2]) for i in range(20))
    )
    rows = await stored(engine, source)
    assert len(rows) == 1
    winner = 0 if rows[0].email == "jane@example.com" else 1
    for index, answer in enumerate(answers):
        if index % 2 == winner:
            assert answer.status_code in (200, 201), answer.text
        else:
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"] == {
                "code": "idempotency_key_reused",
                "message": "This idempotency key was used for a lead with other content: "
                "send this lead under a key of its own.",
                "details": {},
            }
    assert sorted(a.status_code for a in answers).count(201) == 1


async def test_a_retry_formatted_otherwise_replays_and_a_replaying_source_ignores_content(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    rejecting, replaying = await rejecting_source(catalog), await catalog.source()
    for source in (rejecting, replaying):
        first = await post(client, source, "k", email="jane@example.com", phone="4155552671")
        assert first.status_code == 201
        again = await post(client, source, "k", email=" JANE@example.com", phone="(415) 555-2671")
        assert again.status_code == 200 and again.json()["lead_id"] == first.json()["lead_id"]
    other = await post(client, replaying, "k", email="sam@example.com")
    assert other.status_code == 200


async def test_a_lead_stored_without_a_fingerprint_replays_whatever_is_posted(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await rejecting_source(catalog)
    first = await post(client, source, "old", email="jane@example.com")
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE leads SET fingerprint = NULL WHERE source_id = :s"),
            {"s": source.source_id},
        )
    again = await post(client, source, "old", email="sam@example.com")
    assert again.status_code == 200 and again.json()["lead_id"] == first.json()["lead_id"]


async def test_the_fingerprint_is_the_derived_keys_digest(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    answer = await client.post(
        "/api/leads", json={"source_id": source.source_id, "email": "d@example.com"}
    )
    ((_, fingerprint),) = await stored(engine, source)
    assert answer.json()["idempotency_key"] == f"d1:{fingerprint}"
