"""POST /api/leads: bodies, field rules, what is stored, and error bodies (SPEC §6, §7)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.partitioned_leads import LEADS_LAYOUTS
from tests.support import Catalog, CatalogSource, unique_host

# Against the plain and the hash-partitioned `leads` (tests/partitioned_leads.py).
pytestmark = LEADS_LAYOUTS


@pytest.fixture
async def source(catalog: Catalog) -> CatalogSource:
    return await catalog.source()


async def _stored(engine: AsyncEngine, lead_id: str) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    text("SELECT * FROM leads WHERE lead_id = :id"), {"id": uuid.UUID(lead_id)}
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def test_raw_and_normalized_fields_are_stored(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    host = unique_host()
    await catalog.mapping(source.source_id, host, "/api/leads/p")
    body = {
        "Email": "  Jane.Doe+tag@Example.COM ",
        "phone": "(415) 555-2671 ext. 9",
        "first_name": " Jane ",
        "last_name": "Doe",
        "address": "1 Main St",
        "city": "Springfield",
        "region": "CA",
        "postal_code": 94105,
        "country": "US",
        "is_test": "true",
        "utm": {"source": "fb", "ids": [1, 2.5, None]},
        "consent": True,
    }
    response = await client.post("/api/leads/p/x/", json=body, headers={"Host": host.upper()})
    assert response.status_code == 201, response.text
    row = await _stored(engine, response.json()["lead_id"])
    assert row["email"] == "  Jane.Doe+tag@Example.COM "
    assert row["normalized_email"] == "jane.doe+tag@example.com"
    assert row["phone"] == "(415) 555-2671 ext. 9"
    assert row["normalized_phone"] == "+14155552671"
    assert row["first_name"] == " Jane "
    assert row["postal_code"] == "94105"
    assert row["is_test"] is True
    assert row["attributes"] == {"utm": {"source": "fb", "ids": [1, 2.5, None]}, "consent": True}
    assert row["received_host"] == host
    assert row["received_path"] == "/api/leads/p/x"
    assert row["status"] == "received"
    assert row["idempotency_key_origin"] == "derived"


@pytest.mark.parametrize(
    ("phone", "region", "expected"),
    [
        (4155552671, "US", "+14155552671"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", None, "02079460958"),
        ("555-12", "US", None),
    ],
)
async def test_phone_normalized_with_the_markets_region(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    phone: object,
    region: str | None,
    expected: str | None,
) -> None:
    source = await catalog.source(phone_region=region)
    body = {"source_id": source.source_id, "phone": phone, "email": "p@x.co"}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 201, response.text
    assert (await _stored(engine, response.json()["lead_id"]))["normalized_phone"] == expected


async def test_form_body_and_query_string(
    client: httpx.AsyncClient, source: CatalogSource, engine: AsyncEngine
) -> None:
    response = await client.post(
        f"/api/leads?source_id={source.source_id}&campaign=spring",
        data={"email": "form@x.co", "phone": "4155552671", "is_test": "0", "extra": "é"},
    )
    assert response.status_code == 201, response.text
    row = await _stored(engine, response.json()["lead_id"])
    assert row["email"] == "form@x.co"
    assert row["is_test"] is False
    assert row["attributes"] == {"campaign": "spring", "extra": "é"}


async def test_query_string_only(client: httpx.AsyncClient, source: CatalogSource) -> None:
    response = await client.post(f"/api/leads?source_key={source.source_key}&email=q@x.co")
    assert response.status_code == 201


async def test_same_value_in_query_and_body_is_fine(
    client: httpx.AsyncClient, source: CatalogSource
) -> None:
    response = await client.post(
        f"/api/leads?source_id={source.source_id}",
        json={"source_id": source.source_id, "email": "q@x.co"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"content": b"{bad", "headers": {"content-type": "application/json"}}, "malformed_json"),
        ({"content": b"[1,2]", "headers": {"content-type": "application/json"}}, "not_an_object"),
        (
            {"content": b'{"a": NaN}', "headers": {"content-type": "application/json"}},
            "malformed_json",
        ),
        (
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            "malformed_json",
        ),
        (
            {
                "content": b"x=\xff",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            "malformed_form",
        ),
        (
            {"content": b"email=a@example.com", "headers": {"content-type": "text/plain"}},
            "unsupported_content_type",
        ),
        ({"json": {"email": "a\u0000b"}}, "invalid_characters"),
        (
            {"content": b'{"email": "\\ud800"}', "headers": {"content-type": "application/json"}},
            "invalid_characters",
        ),
        (
            {"content": b'{"x": 1e999}', "headers": {"content-type": "application/json"}},
            "invalid_number",
        ),
        (
            {"content": b'{"a": 1, "a": 2}', "headers": {"content-type": "application/json"}},
            "conflicting_values",
        ),
        ({"json": {"email": 5}}, "wrong_type"),
        ({"json": {"first_name": ["x"]}}, "wrong_type"),
        ({"json": {"phone": True}}, "wrong_type"),
        ({"json": {"is_test": "maybe"}}, "wrong_type"),
        ({"json": {"email": "a" * 321}}, "too_long"),
        ({"json": {"phone": "1" * 65}}, "too_long"),
        ({"json": {"city": "c" * 201}}, "too_long"),
        ({"json": {f"f{i}": i for i in range(101)}}, "too_many_fields"),
        ({"json": {"email": "a@b.co", "EMAIL": "c@d.co"}}, "conflicting_values"),
        ({"json": {"deep": json.loads("[" * 40 + "]" * 40)}}, "too_deep"),
    ],
)
async def test_invalid_requests(
    client: httpx.AsyncClient, source: CatalogSource, kwargs: dict[str, object], reason: str
) -> None:
    response = await client.post(f"/api/leads?source_id={source.source_id}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["reason"] == reason


async def test_query_and_body_conflict(client: httpx.AsyncClient, source: CatalogSource) -> None:
    response = await client.post(
        "/api/leads?email=one@x.co", json={"source_id": source.source_id, "email": "two@x.co"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"reason": "conflicting_values", "field": "email"}


async def test_body_over_the_limit(client: httpx.AsyncClient, source: CatalogSource) -> None:
    body = {"source_id": source.source_id, "email": "a@b.co", "blob": "x" * 70000}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["reason"] == "body_too_large"


async def test_body_just_under_the_limit(client: httpx.AsyncClient, source: CatalogSource) -> None:
    body = {"source_id": source.source_id, "email": "a@b.co", "blob": "x" * 60000}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 201


@pytest.mark.parametrize("value", [True, "true", "1", 1, " TRUE "])
async def test_is_test_true_forms(
    client: httpx.AsyncClient, source: CatalogSource, engine: AsyncEngine, value: object
) -> None:
    body = {"source_id": source.source_id, "email": f"{uuid.uuid4().hex}@x.co", "is_test": value}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 201, response.text
    assert (await _stored(engine, response.json()["lead_id"]))["is_test"] is True


async def test_errors_have_no_stack_trace_and_a_stable_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/leads", json={"email": "a@b.co"})
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message", "details"]
    assert "Traceback" not in response.text
