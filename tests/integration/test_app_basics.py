"""Composition root, readiness, the error envelope of framework errors, the OpenAPI
examples and /docs."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from cli.serve import load_example_catalog
from infrastructure import migrate
from infrastructure.container import HANDLERS, QUERY_HANDLERS, bootstrap
from infrastructure.schema_revision import head_revision
from infrastructure.settings import Settings
from web.app import create_app


def test_every_registered_handler_resolves(settings: Settings) -> None:
    application = bootstrap(settings)
    try:
        for command_type, handler_type in HANDLERS.items():
            handler = application.bus.handler_for(command_type)
            assert isinstance(handler, handler_type)
    finally:
        asyncio.run(application.close())


def test_every_registered_query_handler_resolves(settings: Settings) -> None:
    application = bootstrap(settings)
    try:
        for query_type, handler_type in QUERY_HANDLERS.items():
            assert isinstance(application.queries.handler_for(query_type), handler_type)
        # Reads never go through the command bus.
        assert not set(QUERY_HANDLERS) & set(HANDLERS)
    finally:
        asyncio.run(application.close())


async def _get(settings: Settings, path: str) -> httpx.Response:
    app = create_app(lambda: settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)


def test_readyz_is_503_on_an_unmigrated_database_and_200_after_upgrade(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    settings = Settings(database_url=url)
    response = asyncio.run(_get(settings, "/readyz"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.json()["error"]["details"]["reason"] == "schema_not_migrated"
    assert response.headers["Retry-After"]
    asyncio.run(migrate.upgrade(url))
    response = asyncio.run(_get(settings, "/readyz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schema_revision": head_revision()}


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("POST", "/api/lead", 404, "not_found"),
        ("GET", "/api/leads", 405, "method_not_allowed"),
        ("PUT", "/api/leads/x", 405, "method_not_allowed"),
        ("DELETE", "/healthz", 405, "method_not_allowed"),
    ],
)
async def test_framework_errors_use_the_envelope(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


# --- /docs --------------------------------------------------------------------------------

# The URLs a Swagger UI page loads: its style sheet, icon and script, and the document.
PAGE_URLS = re.compile(r"""(?:href|src)="([^"]*)"|url: '([^']*)'""")
CONTENT_TYPES = {".css": "text/css", ".png": "image/png", ".js": "javascript", ".json": "json"}


async def test_docs_loads_only_what_the_service_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "://" not in page.text  # nothing from a CDN: the page works offline
    urls = [href or url for href, url in PAGE_URLS.findall(page.text)]
    assert sorted(url.rpartition(".")[2] for url in urls) == ["css", "js", "json", "png"]
    for url in urls:
        assert url.startswith("/") and not url.startswith("//")
        response = await client.get(url)
        assert response.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert CONTENT_TYPES[suffix] in response.headers["content-type"], url
        assert response.content


async def test_docs_serves_no_other_file(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/__init__.py")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- the OpenAPI examples -----------------------------------------------------------------


def _example(operation: dict[str, Any], status: str) -> Any:
    return operation["responses"][status]["content"]["application/json"]["example"]


async def _try_it_out(app: Any) -> list[tuple[httpx.Response, Any]]:
    """Each documented example request, sent as Swagger UI's "Try it out" sends it, with the
    example it should be answered with."""
    paths = app.openapi()["paths"]
    generic, posting_url = paths["/api/leads"]["post"], paths["/api/leads/{subpath}"]["post"]
    subpath = posting_url["parameters"][-1]["example"]
    content = generic["requestBody"]["content"]
    sent: list[tuple[httpx.Response, Any]] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            body = content["application/json"]["example"]
            response = await client.post("/api/leads", json=body)
            sent.append((response, _example(generic, "201")))
            body = posting_url["requestBody"]["content"]["application/json"]["example"]
            response = await client.post(f"/api/leads/{subpath}", json=body)
            sent.append((response, _example(posting_url, "200")))
            form = content["application/x-www-form-urlencoded"]["example"]
            response = await client.post("/api/leads", data=form)
            sent.append((response, _example(generic, "200")))
    return sent


def test_the_documented_examples_run_against_the_example_catalog(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    asyncio.run(migrate.upgrade(url))
    assert asyncio.run(load_example_catalog(url))
    app = create_app(lambda: Settings(database_url=url))
    (created, created_example), *replays = asyncio.run(_try_it_out(app))
    assert created.status_code == 201, created.text
    assert created.json() == created_example
    assert created_example["replayed"] is False
    for replay, replay_example in replays:
        assert replay.status_code == 200, replay.text
        assert replay.json() == replay_example
        assert replay_example["replayed"] is True


async def test_behind_a_root_path_the_ingest_routes_are_found_as_the_router_finds_them(
    app: Any, catalog: Any
) -> None:
    source = await catalog.source()
    transport = httpx.ASGITransport(app=app, root_path="/proxy")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        lead = {"source_id": source.source_id, "email": "root@example.com"}
        for path in ("/proxy/api/leads", "/proxy/api/leads/acme"):
            assert (await client.post(path, json=lead)).status_code in (200, 201)
        assert (await client.get("/proxy/api/leads")).status_code == 405
        assert (await client.post("/proxy/api/leadsx", json=lead)).status_code == 404
