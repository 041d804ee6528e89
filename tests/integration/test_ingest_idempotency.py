"""Idempotent creation: client keys, header forms, derived keys, replays (SPEC §8, §6.1)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.partitioned_leads import LEADS_LAYOUTS
from tests.support import Catalog, CatalogSource

# Against the plain and the hash-partitioned `leads` (tests/partitioned_leads.py).
pytestmark = LEADS_LAYOUTS

NAMESPACE = uuid.UUID("475b17ed-23d3-5374-9bae-ea431261849e")


async def _rows(engine: AsyncEngine, source_id: int) -> int:
    async with engine.connect() as connection:
        count: int = (
            await connection.execute(
                text("SELECT count(*) FROM leads WHERE source_id = :s"), {"s": source_id}
            )
        ).scalar_one()
    return count


@pytest.fixture
async def source(catalog: Catalog) -> CatalogSource:
    return await catalog.source()


async def test_client_key_is_stripped_and_replays(
    client: httpx.AsyncClient, source: CatalogSource, engine: AsyncEngine
) -> None:
    body = {"source_id": source.source_id, "idempotency_key": "  order-17 ", "email": "a@b.co"}
    first = await client.post("/api/leads", json=body)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert first.json()["idempotency_key"] == "order-17"
    assert first.json()["idempotency_key_origin"] == "client"
    assert first.json()["replayed"] is False
    assert first.json()["lead_id"] == str(uuid.uuid5(NAMESPACE, f"{source.source_id}:order-17"))

    second = await client.post("/api/leads", json={**body, "idempotency_key": "order-17"})
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == {**first.json(), "replayed": True}
    assert await _rows(engine, source.source_id) == 1


async def test_identical_requests_give_identical_bytes(
    client: httpx.AsyncClient, source: CatalogSource
) -> None:
    body = {"source_id": source.source_id, "idempotency_key": "bytes", "email": "a@b.co"}
    await client.post("/api/leads", json=body)
    replays = [await client.post("/api/leads", json=body) for _ in range(3)]
    assert len({r.content for r in replays}) == 1


@pytest.mark.parametrize(
    ("header", "expected_key"),
    [("abc-1", "abc-1"), ('"abc-2"', "abc-2"), ('  "a\\"b"  ', 'a"b'), (" tok ", "tok")],
)
async def test_idempotency_key_header_forms(
    client: httpx.AsyncClient, source: CatalogSource, header: str, expected_key: str
) -> None:
    response = await client.post(
        "/api/leads",
        json={"source_id": source.source_id, "phone": "4155552671"},
        headers={"Idempotency-Key": header},
    )
    assert response.status_code == 201, response.text
    assert response.json()["idempotency_key"] == expected_key


async def test_header_and_field_must_agree(
    client: httpx.AsyncClient, source: CatalogSource
) -> None:
    same = await client.post(
        "/api/leads",
        json={"source_id": source.source_id, "idempotency_key": " k-1 ", "email": "a@b.co"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert same.status_code == 201
    different = await client.post(
        "/api/leads",
        json={"source_id": source.source_id, "idempotency_key": "k-2", "email": "a@b.co"},
        headers={"Idempotency-Key": "k-3"},
    )
    assert different.status_code == 400
    error = different.json()["error"]
    assert error["code"] == "invalid_idempotency_key_format"
    assert error["details"]["reason"] == "header_body_mismatch"


async def test_more_than_one_header_is_rejected(
    client: httpx.AsyncClient, source: CatalogSource
) -> None:
    response = await client.post(
        "/api/leads",
        json={"source_id": source.source_id, "email": "a@b.co"},
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "a")],
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["reason"] == "multiple_headers"


@pytest.mark.parametrize("key", ["", "   ", "a b", "x" * 256, "ключ", 17])
async def test_malformed_client_keys(
    client: httpx.AsyncClient, source: CatalogSource, key: object
) -> None:
    body = {"source_id": source.source_id, "idempotency_key": key, "email": "a@b.co"}
    response = await client.post("/api/leads", json=body)
    if isinstance(key, str) and not key.strip():
        # Blank counts as absent: the key is derived instead.
        assert response.status_code == 201
        assert response.json()["idempotency_key_origin"] == "derived"
        return
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key_format"


async def test_key_of_255_characters_is_accepted(
    client: httpx.AsyncClient, source: CatalogSource
) -> None:
    key = "~" * 255
    response = await client.post(
        "/api/leads", json={"source_id": source.source_id, "idempotency_key": key, "email": "x@y.z"}
    )
    assert response.status_code == 201
    assert response.json()["idempotency_key"] == key


async def test_derived_key_replays_across_formatting_variants(
    client: httpx.AsyncClient, source: CatalogSource, engine: AsyncEngine
) -> None:
    variants = [
        {"email": "Jane.Doe@Example.com", "phone": "(415) 555-2671", "first_name": "Jane"},
        {"email": "  jane.doe@example.COM ", "phone": "+1 415 555 2671", "first_name": " Jane "},
        {"EMAIL": "jane.doe@example.com", "Phone": 4155552671, "first_name": "Jane"},
    ]
    responses = [
        await client.post("/api/leads", json={"source_id": source.source_id, **v}) for v in variants
    ]
    assert [r.status_code for r in responses] == [201, 200, 200]
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert responses[0].json()["idempotency_key"].startswith("d1:")
    assert responses[0].json()["idempotency_key_origin"] == "derived"
    assert await _rows(engine, source.source_id) == 1


@pytest.mark.parametrize(
    "change",
    [{"utm_source": "b"}, {"is_test": True}, {"first_name": "Janet"}, {"phone": "4155552672"}],
)
async def test_a_different_lead_gets_a_new_derived_key(
    client: httpx.AsyncClient, source: CatalogSource, change: dict[str, object]
) -> None:
    base = {
        "source_id": source.source_id,
        "email": "j@x.co",
        "phone": "4155552671",
        "first_name": "Jane",
        "utm_source": "a",
    }
    first = await client.post("/api/leads", json=base)
    second = await client.post("/api/leads", json={**base, **change})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["lead_id"] != second.json()["lead_id"]


async def test_selectors_are_not_part_of_the_derived_key(
    client: httpx.AsyncClient, source: CatalogSource
) -> None:
    first = await client.post("/api/leads", json={"source_id": source.source_id, "email": "s@x.co"})
    second = await client.post(
        "/api/leads", json={"source_key": source.source_key, "email": "s@x.co"}
    )
    assert (first.status_code, second.status_code) == (201, 200)


@pytest.mark.parametrize(
    "body",
    [{}, {"first_name": "Only"}, {"email": "   "}, {"phone": "12345"}, {"phone": "call me"}],
)
async def test_derivation_needs_an_email_or_a_phone(
    client: httpx.AsyncClient, source: CatalogSource, body: dict[str, object]
) -> None:
    response = await client.post("/api/leads", json={"source_id": source.source_id, **body})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_derivation_failed"
    assert response.json()["error"]["details"] == {"required_any_of": ["email", "phone"]}


async def test_same_key_under_another_source_is_another_lead(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    first, second = await catalog.source(), await catalog.source()
    body = {"idempotency_key": "shared-key", "email": "a@b.co"}
    one = await client.post("/api/leads", json={"source_id": first.source_id, **body})
    two = await client.post("/api/leads", json={"source_id": second.source_id, **body})
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["lead_id"] != two.json()["lead_id"]


async def test_replay_with_a_different_payload_returns_the_stored_lead(
    client: httpx.AsyncClient, source: CatalogSource, engine: AsyncEngine
) -> None:
    body = {"source_id": source.source_id, "idempotency_key": "k", "email": "first@x.co"}
    first = await client.post("/api/leads", json=body)
    second = await client.post("/api/leads", json={**body, "email": "second@x.co"})
    assert second.status_code == 200
    assert second.json()["lead_id"] == first.json()["lead_id"]
    async with engine.connect() as connection:
        email = (
            await connection.execute(
                text("SELECT email FROM leads WHERE source_id = :s"), {"s": source.source_id}
            )
        ).scalar_one()
    assert email == "first@x.co"


async def test_replay_shows_current_status_and_original_bindings(
    client: httpx.AsyncClient, catalog: Catalog, source: CatalogSource
) -> None:
    body = {"source_id": source.source_id, "idempotency_key": "k", "email": "a@b.co"}
    first = (await client.post("/api/leads", json=body)).json()
    await catalog.execute(
        "UPDATE leads SET status = 'validated' WHERE lead_id = :id", id=uuid.UUID(first["lead_id"])
    )
    new_offer = await catalog.offer()
    await catalog.execute(
        "UPDATE sources SET offer_id = :o WHERE source_id = :s", o=new_offer, s=source.source_id
    )
    replay = await client.post("/api/leads", json=body)
    assert replay.status_code == 200
    assert replay.json() == {**first, "status": "validated", "replayed": True}
    assert replay.json()["offer_id"] == source.offer_id
    fresh = await client.post("/api/leads", json={**body, "idempotency_key": "k2"})
    assert fresh.status_code == 201
    assert fresh.json()["offer_id"] == new_offer
    assert fresh.json()["offer_id"] != first["offer_id"]


async def test_racing_inserts_of_one_lead_never_fail(
    client: httpx.AsyncClient, source: CatalogSource
) -> None:
    # Both unique indexes (primary key lead_id, and (source_id, idempotency_key)) must be
    # conflict arbiters, or a racing insert can hit the primary key first and fail.
    for round_number in range(25):
        body = {
            "source_id": source.source_id,
            "idempotency_key": f"r{round_number}",
            "email": "r@x.co",
        }
        responses = await asyncio.gather(*(client.post("/api/leads", json=body) for _ in range(20)))
        assert sorted(r.status_code for r in responses) == [200] * 19 + [201]


@pytest.mark.parametrize("derived", [False, True])
async def test_concurrent_identical_posts_create_one_lead(
    client: httpx.AsyncClient, source: CatalogSource, engine: AsyncEngine, derived: bool
) -> None:
    body: dict[str, object] = {"source_id": source.source_id, "email": "race@x.co"}
    if not derived:
        body["idempotency_key"] = "race"
    responses = await asyncio.gather(*(client.post("/api/leads", json=body) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201]
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert await _rows(engine, source.source_id) == 1
