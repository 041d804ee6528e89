"""XML leads over HTTP: the same lead as JSON, form, XML and an `xml` form field is one lead;
hostile documents are 400 at once, store nothing and leave the worker free."""

from __future__ import annotations

import asyncio
import time
import urllib.parse

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Catalog, CatalogSource
from tests.unit.test_posted_xml import HOSTILE

FIELDS = {"email": "Jane.Doe@Example.com", "phone": "(415) 555-2671", "utm_source": "spring"}


def xml(source: CatalogSource) -> str:
    body = "".join(f"<{n}>{v}</{n}>" for n, v in FIELDS.items())
    return f"<lead><source_id>{source.source_id}</source_id>{body}</lead>"


async def count(engine: AsyncEngine, source: CatalogSource) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM leads WHERE source_id = :s"), {"s": source.source_id}
        )
        return int(found.scalar_one())


async def test_the_same_lead_as_json_form_and_xml_is_one_lead(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    posted = {"source_id": str(source.source_id), **FIELDS}
    answers = [
        await client.post("/api/leads", json=posted),
        await client.post("/api/leads", data=posted),
        await client.post(
            "/api/leads", content=xml(source), headers={"content-type": "application/xml"}
        ),
        await client.post(
            "/api/leads",
            content=xml(source).encode(),
            headers={"content-type": "text/xml; charset=utf-8"},
        ),
        await client.post(
            "/api/leads",
            content="xml=" + urllib.parse.quote(xml(source)),
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200]
    assert len({a.json()["lead_id"] for a in answers}) == 1
    assert await count(engine, source) == 1


async def test_a_known_field_given_structure_is_the_wrong_type(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    document = f"<lead><source_id>{source.source_id}</source_id><email><a>x</a></email></lead>"
    answer = await client.post(
        "/api/leads", content=document, headers={"content-type": "application/xml"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"reason": "wrong_type", "field": "email"}


@pytest.mark.parametrize(("document", "reason"), HOSTILE.values(), ids=list(HOSTILE))
async def test_hostile_xml_is_refused_at_once_and_the_worker_stays_free(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    document: bytes,
    reason: str,
) -> None:
    source = await catalog.source()
    started = time.perf_counter()
    hostile, ordinary = await asyncio.gather(
        client.post("/api/leads", content=document, headers={"content-type": "application/xml"}),
        client.post("/api/leads", json={"source_id": source.source_id, "email": "o@example.com"}),
    )
    assert time.perf_counter() - started < 2.0
    assert hostile.status_code == 400
    # 10,000 levels of nesting are over the body limit before they are XML.
    expected = "body_too_large" if len(document) > 64 * 1024 else reason
    assert hostile.json()["error"]["details"]["reason"] == expected
    assert ordinary.status_code == 201
    assert await count(engine, source) == 1


async def test_an_xml_body_over_the_limit_is_refused_like_any_body(
    client: httpx.AsyncClient,
) -> None:
    document = b"<lead><note>" + b"x" * (65 * 1024) + b"</note></lead>"
    answer = await client.post(
        "/api/leads", content=document, headers={"content-type": "application/xml"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["reason"] == "body_too_large"
