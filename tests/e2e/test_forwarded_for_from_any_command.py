"""The client address under the spec's own command: only LEADS_TRUSTED_PROXIES decides it.

uvicorn believes `X-Forwarded-For` from 127.0.0.1 and ::1 by default (its proxy headers
are on unless `--no-proxy-headers`); these tests drive real processes over real sockets with
spoofed headers and check what the network rules saw, what was stored and what was logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Catalog, running_service

SPOOFED = "10.1.2.3"
FORGED = 'FORGED"-"x'


async def _client_ip(engine: AsyncEngine, lead_id: str) -> str | None:
    async with engine.connect() as connection:
        value = await connection.scalar(
            text("SELECT host(client_ip) FROM leads WHERE lead_id = :id"), {"id": lead_id}
        )
    return None if value is None else str(value)


@pytest.mark.parametrize(
    ("host", "peer", "uvicorn_args", "env"),
    [
        # The spec's command as users run it (`--host 0.0.0.0 --port 8000`, on a free port).
        ("0.0.0.0", "127.0.0.1", (), {}),
        ("::1", "::1", (), {}),
        # Asking uvicorn to believe every peer changes nothing either, on several workers.
        ("0.0.0.0", "127.0.0.1", ("--workers", "2"), {"UVICORN_FORWARDED_ALLOW_IPS": "*"}),
        ("0.0.0.0", "127.0.0.1", ("--forwarded-allow-ips", "*"), {"FORWARDED_ALLOW_IPS": "*"}),
    ],
)
async def test_a_direct_client_cannot_choose_its_address(
    catalog: Catalog,
    engine: AsyncEngine,
    database_url: str,
    host: str,
    peer: str,
    uvicorn_args: tuple[str, ...],
    env: Mapping[str, str],
) -> None:
    inside = await catalog.intake_source(networks=["10.0.0.0/8"])
    loopback = await catalog.intake_source(networks=["127.0.0.0/8", "::1/128"])
    with running_service(database_url, *uvicorn_args, host=host, env=env) as service:
        base = service.base_url.replace("0.0.0.0", peer)
        async with httpx.AsyncClient(base_url=base) as client:
            spoofed = {"X-Forwarded-For": SPOOFED}
            body = {"source_id": inside.source_id, "email": "spoof@x.co"}
            refused = await client.post("/api/leads", json=body, headers=spoofed)
            body = {"source_id": loopback.source_id, "email": "spoof@x.co"}
            accepted = await client.post("/api/leads", json=body, headers=spoofed)
            body["email"] = "forged@x.co"
            forged = await client.post("/api/leads", json=body, headers={"X-Forwarded-For": FORGED})
        logs = service.logs()
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "client_not_allowed"
    assert accepted.status_code == 201, accepted.text
    assert await _client_ip(engine, accepted.json()["lead_id"]) == peer
    assert forged.status_code == 201, forged.text
    assert await _client_ip(engine, forged.json()["lead_id"]) == peer
    assert SPOOFED not in logs and "FORGED" not in logs
    assert re.search(rf'{re.escape(peer)}:\d+ - "POST /api/leads HTTP/1.1" 201', logs), logs
    if env or uvicorn_args[:1] == ("--forwarded-allow-ips",):
        assert "LEADS_TRUSTED_PROXIES" in logs  # said once that uvicorn's setting is ignored


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    catalog: Catalog, engine: AsyncEngine, database_url: str
) -> None:
    source = await catalog.intake_source(networks=["10.0.0.0/8"])
    env = {"LEADS_TRUSTED_PROXIES": "127.0.0.1/32"}
    with running_service(database_url, "--no-access-log", env=env) as service:
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            response = await client.post(
                "/api/leads",
                json={"source_id": source.source_id, "email": "proxied@x.co"},
                headers={"X-Forwarded-For": SPOOFED},
            )
    assert response.status_code == 201, response.text
    assert await _client_ip(engine, response.json()["lead_id"]) == SPOOFED


def test_uvicorn_adds_no_proxy_headers_middleware_to_the_service() -> None:
    # What `leads serve`, `uvicorn.run(...)` and the container command all load.
    config = uvicorn.Config("web.app:app", proxy_headers=True, forwarded_allow_ips="*")
    config.load()
    assert type(config.loaded_app).__name__ != "ProxyHeadersMiddleware"
