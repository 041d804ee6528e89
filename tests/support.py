"""Test helpers: catalog rows inserted with plain SQL, unique per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


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
