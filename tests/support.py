"""Test helpers: catalog rows inserted with plain SQL (unique per test), a real service process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.local_postgres import free_port


@dataclass(frozen=True)
class CatalogSource:
    source_id: int
    source_key: str | None
    offer_id: int
    market_id: int
    vertical_id: int
    code: str


@dataclass
class Catalog:
    """Inserts catalog rows with plain SQL, each with unique codes so tests never collide."""

    engine: AsyncEngine

    async def market(self, phone_region: str | None = "US") -> int:
        return await self._insert(
            "INSERT INTO markets (code, name, phone_region) VALUES (:code, 'Market', :region) "
            "RETURNING market_id",
            region=phone_region,
        )

    async def vertical(self) -> int:
        return await self._insert(
            "INSERT INTO verticals (code, name) VALUES (:code, 'Vertical') RETURNING vertical_id"
        )

    async def offer(
        self, market_id: int | None = None, vertical_id: int | None = None, active: bool = True
    ) -> int:
        return await self._insert(
            "INSERT INTO offers (code, name, market_id, vertical_id, is_active) "
            "VALUES (:code, 'Offer', :market_id, :vertical_id, :active) RETURNING offer_id",
            market_id=market_id or await self.market(),
            vertical_id=vertical_id or await self.vertical(),
            active=active,
        )

    async def source(
        self,
        *,
        key: str | None = "",
        offer_id: int | None = None,
        active: bool = True,
        phone_region: str | None = "US",
    ) -> CatalogSource:
        """A source of a fresh offer; `key=""` means: give it a unique key."""
        if offer_id is None:
            offer_id = await self.offer(market_id=await self.market(phone_region))
        if key == "":
            key = f"key-{uuid.uuid4().hex[:12]}"
        code = f"src-{uuid.uuid4().hex[:12]}"
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    text(
                        "INSERT INTO sources (code, name, offer_id, source_key, is_active) "
                        "VALUES (:code, 'Source', :offer_id, :key, :active) "
                        "RETURNING source_id, (SELECT market_id FROM offers WHERE offer_id = "
                        ":offer_id), (SELECT vertical_id FROM offers WHERE offer_id = :offer_id)"
                    ),
                    {"code": code, "offer_id": offer_id, "key": key, "active": active},
                )
            ).one()
        return CatalogSource(row[0], key, offer_id, row[1], row[2], code)

    async def mapping(
        self, source_id: int, hostname: str, path_prefix: str = "/", active: bool = True
    ) -> int:
        return await self._insert(
            "INSERT INTO source_http_mappings (source_id, hostname, path_prefix, is_active) "
            "VALUES (:source_id, :hostname, :path_prefix, :active) RETURNING mapping_id",
            source_id=source_id,
            hostname=hostname,
            path_prefix=path_prefix,
            active=active,
        )

    async def execute(self, sql: str, **params: object) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(sql), params)

    async def _insert(self, sql: str, **params: object) -> int:
        params.setdefault("code", f"c-{uuid.uuid4().hex[:12]}")
        async with self.engine.begin() as connection:
            value: int = (await connection.execute(text(sql), params)).scalar_one()
        return value


def unique_host() -> str:
    return f"h{uuid.uuid4().hex[:10]}.example.com"


class Service:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str) -> None:
        self.process = process
        self.base_url = base_url


@contextmanager
def running_service(
    database_url: str, *extra_args: str, env: dict[str, str] | None = None
) -> Iterator[Service]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "web.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            *extra_args,
        ],
        env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "exited")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not become ready in 30 s")
            time.sleep(0.1)
        yield Service(process, base_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
