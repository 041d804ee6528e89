"""Answers in JSON, XML or plain text over HTTP: every error code the application answers, in
each format the same document; `Accept` with q-values and `*/*`; a source's `reply_format`
for requests that leave the choice open, before and after the source is known (the catalog's
`reply_format`: tests/integration/test_catalog_intake_cli.py).

The HTTP server's own answers (408, 431, 400 `malformed_http`) are tested on a real socket in
tests/e2e/test_hostile_requests.py, the 503 past the concurrency limit in
tests/unit/test_http_limits.py.
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from string import Template

import httpx
import pytest
from fastapi import FastAPI

from domain.errors import ErrorCode
from domain.replies import CONTENT_TYPES, render
from infrastructure.settings import Settings
from tests.support import Catalog, CatalogSource, unique_host
from web.app import create_app

MEDIA = ("application/xml", "text/xml", "text/plain")
SERVER_ANSWERS = {ErrorCode.REQUEST_TIMEOUT, ErrorCode.REQUEST_HEADER_TOO_LARGE}


@dataclass(frozen=True)
class Sources:
    plain: CatalogSource
    guarded: CatalogSource  # takes leads from 192.0.2.0/24 only
    rejecting: CatalogSource  # key_reuse: reject, holding a lead under "taken"
    ambiguous_host: str


Send = Callable[[httpx.AsyncClient, Sources, dict[str, str]], Awaitable[httpx.Response]]


def posting(body: str, *, content_type: str = "application/json", **headers: str) -> Send:
    async def send(
        client: httpx.AsyncClient, sources: Sources, accept: dict[str, str]
    ) -> httpx.Response:
        content = Template(body).substitute(
            plain=sources.plain.source_id,
            guarded=sources.guarded.source_id,
            rejecting=sources.rejecting.source_id,
        )
        return await client.post(
            "/api/leads/x",
            content=content,
            headers={"Content-Type": content_type, **headers, **accept},
        )

    return send


async def _ambiguous(
    client: httpx.AsyncClient, sources: Sources, accept: dict[str, str]
) -> httpx.Response:
    host = {"Host": sources.ambiguous_host}
    return await client.post("/api/leads", json={"email": "a@example.com"}, headers=host | accept)


# One request per code the application answers (the HTTP server's own are elsewhere).
PROVOKED: dict[ErrorCode, Send] = {
    ErrorCode.INVALID_REQUEST: posting('{"email": '),
    ErrorCode.INVALID_SOURCE: posting('{"source_id": 2147483000, "email": "a@example.com"}'),
    ErrorCode.INVALID_SOURCE_KEY: posting('{"source_key": "no-such-key", "email": "a@x.com"}'),
    ErrorCode.CLIENT_NOT_ALLOWED: posting('{"source_id": $guarded, "email": "a@example.com"}'),
    ErrorCode.UNMAPPED_SOURCE: posting('{"email": "a@example.com"}', Host="nowhere.example"),
    ErrorCode.AMBIGUOUS_SOURCE_MAPPING: _ambiguous,
    ErrorCode.INVALID_IDEMPOTENCY_KEY_FORMAT: posting(
        '{"source_id": $plain, "email": "a@example.com"}', **{"Idempotency-Key": "a b"}
    ),
    ErrorCode.IDEMPOTENCY_DERIVATION_FAILED: posting('{"source_id": $plain}'),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: posting(
        '{"source_id": $rejecting, "email": "other@example.com"}', **{"Idempotency-Key": "taken"}
    ),
}


@pytest.fixture(scope="module")
async def sources(engine: object) -> Sources:
    catalog = Catalog(engine)  # type: ignore[arg-type]
    plain, guarded = await catalog.source(), await catalog.intake_source(networks=["192.0.2.0/24"])
    rejecting = await catalog.source()
    await catalog.execute(
        "UPDATE sources SET key_reuse = 'reject' WHERE source_id = :id", id=rejecting.source_id
    )
    host = unique_host()
    for _ in range(2):
        await catalog.mapping((await catalog.source()).source_id, host, "/api/leads")
    return Sources(plain, guarded, rejecting, host)


async def _answered_in_every_format(
    client: httpx.AsyncClient, send: Send, sources: Sources, code: ErrorCode
) -> None:
    in_json = await send(client, sources, {"Accept": "application/json"})
    assert in_json.status_code == code.status, in_json.text
    assert in_json.headers["content-type"] == "application/json"
    document = in_json.json()
    assert document["error"]["code"] == code.value
    for media in MEDIA:
        answer = await send(client, sources, {"Accept": media})
        assert answer.status_code == code.status
        assert answer.headers["content-type"] == CONTENT_TYPES[media]
        assert answer.content == render(media, document, "error")
    xml = ET.fromstring((await send(client, sources, {"Accept": "application/xml"})).content)
    assert (xml.tag, xml.findtext("code")) == ("error", code.value)
    text = (await send(client, sources, {"Accept": "text/plain"})).text
    assert text.startswith(f"error.code={code.value}\nerror.message=")


@pytest.mark.parametrize("code", list(PROVOKED), ids=str)
async def test_every_error_is_the_same_document_in_each_format(
    client: httpx.AsyncClient, sources: Sources, code: ErrorCode
) -> None:
    taken = await client.post(
        "/api/leads",
        json={"source_id": sources.rejecting.source_id, "email": "first@example.com"},
        headers={"Idempotency-Key": "taken"},
    )
    assert taken.status_code in (200, 201)
    await _answered_in_every_format(client, PROVOKED[code], sources, code)


async def test_framework_answers_follow_accept_too(
    client: httpx.AsyncClient, sources: Sources
) -> None:
    async def not_found(c: httpx.AsyncClient, _: Sources, h: dict[str, str]) -> httpx.Response:
        return await c.get("/nowhere", headers=h)

    async def not_allowed(c: httpx.AsyncClient, _: Sources, h: dict[str, str]) -> httpx.Response:
        return await c.get("/api/leads", headers=h)

    await _answered_in_every_format(client, not_found, sources, ErrorCode.NOT_FOUND)
    await _answered_in_every_format(client, not_allowed, sources, ErrorCode.METHOD_NOT_ALLOWED)
    allowed = await client.get("/api/leads", headers={"Accept": "text/plain"})
    assert allowed.headers["allow"] == "POST" and "error.details.allowed.0=POST\n" in allowed.text


@pytest.fixture(scope="module")
async def failing_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The service on a database that does not exist (503), with a route that fails (500)."""
    missing = settings.database_url.rsplit("/", 1)[0] + f"/missing_{uuid.uuid4().hex[:8]}"
    app = create_app(lambda: Settings(database_url=missing, db_timeout_s=5.0))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    async with app.router.lifespan_context(app):
        yield app


async def test_unavailable_and_unexpected_errors_follow_accept(
    failing_app: FastAPI, sources: Sources
) -> None:
    async def post(c: httpx.AsyncClient, _: Sources, h: dict[str, str]) -> httpx.Response:
        return await c.post("/api/leads", json={"source_id": 1, "email": "a@x.com"}, headers=h)

    async def boom(c: httpx.AsyncClient, _: Sources, h: dict[str, str]) -> httpx.Response:
        return await c.get("/boom", headers=h)

    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await _answered_in_every_format(client, post, sources, ErrorCode.SERVICE_UNAVAILABLE)
        await _answered_in_every_format(client, boom, sources, ErrorCode.INTERNAL_ERROR)
        ready = await client.get("/readyz", headers={"Accept": "application/xml"})
        assert ready.status_code == 503 and ready.text.startswith("<?xml")


def test_every_code_is_answered_in_every_format_by_some_test() -> None:
    covered = {*PROVOKED, ErrorCode.NOT_FOUND, ErrorCode.METHOD_NOT_ALLOWED}
    covered |= {ErrorCode.SERVICE_UNAVAILABLE, ErrorCode.INTERNAL_ERROR, *SERVER_ANSWERS}
    assert covered == set(ErrorCode)


# --- success, negotiation and the source's reply format ----------------------------------


async def _source_replying(catalog: Catalog, reply_format: str, **intake: object) -> CatalogSource:
    source = await catalog.intake_source(**intake)  # type: ignore[arg-type]
    await catalog.execute(
        "UPDATE sources SET reply_format = :format WHERE source_id = :id",
        format=reply_format,
        id=source.source_id,
    )
    return source


async def test_a_lead_is_answered_as_accepted_and_replays_identically(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    lead = {"source_id": source.source_id, "email": f"{uuid.uuid4().hex}@example.com"}
    created = await client.post("/api/leads", json=lead, headers={"Accept": "text/plain"})
    assert created.status_code == 201
    assert created.headers["content-type"] == "text/plain; charset=utf-8"
    in_json = await client.post("/api/leads", json=lead)
    assert in_json.status_code == 200 and in_json.headers["idempotent-replayed"] == "true"
    replay = in_json.json()
    assert created.content == render("text/plain", {**replay, "replayed": False}, "lead")
    preferred = "text/plain;q=0.5, application/xml;q=0.9, application/json;q=0.1"
    for accept, media in [
        (preferred, "application/xml"),
        ("text/xml", "text/xml"),
        ("*/*", "application/json"),
        ("image/png", "application/json"),
    ]:
        answer = await client.post("/api/leads", json=lead, headers={"Accept": accept})
        assert answer.status_code == 200 and answer.headers["idempotent-replayed"] == "true"
        assert answer.headers["content-type"] == CONTENT_TYPES[media]
        assert answer.content == render(media, replay, "lead")


async def test_a_sources_reply_format_answers_requests_that_leave_the_choice_open(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await _source_replying(catalog, "xml", networks=["127.0.0.0/8", "::1/128"])
    lead = {"source_id": source.source_id, "email": f"{uuid.uuid4().hex}@example.com"}
    created = await client.post("/api/leads", json=lead)
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/xml"
    document = ET.fromstring(created.content)
    assert document.tag == "lead" and document.findtext("replayed") == "false"
    anything = await client.post("/api/leads", json=lead, headers={"Accept": "*/*"})
    assert anything.headers["content-type"] == "application/xml"
    assert ET.fromstring(anything.content).findtext("lead_id") == document.findtext("lead_id")
    asked = await client.post("/api/leads", json=lead, headers={"Accept": "application/json"})
    assert asked.json()["lead_id"] == document.findtext("lead_id")
    # An error once the source is known is in its format; one before, in JSON.
    underived = await client.post("/api/leads", json={"source_id": source.source_id})
    assert underived.status_code == 400 and underived.text.startswith("<?xml")
    malformed = await client.post("/api/leads", content=b"{", headers={"Content-Type": "a/json"})
    assert malformed.headers["content-type"] == "application/json"


async def test_a_text_source_refuses_a_client_in_text(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await _source_replying(catalog, "text", networks=["192.0.2.0/24"])
    refused = await client.post(
        "/api/leads", json={"source_id": source.source_id, "email": "a@b.c"}
    )
    assert refused.status_code == 403
    assert refused.text == (
        "error.code=client_not_allowed\n"
        "error.message=This source does not accept leads from the address this request came "
        "from.\n"
    )


async def test_answers_are_deterministic_under_concurrency(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await _source_replying(catalog, "text")
    lead = {"source_id": source.source_id, "email": f"{uuid.uuid4().hex}@example.com"}
    await client.post("/api/leads", json=lead)
    answers = await asyncio.gather(*(client.post("/api/leads", json=lead) for _ in range(10)))
    assert len({answer.content for answer in answers}) == 1
