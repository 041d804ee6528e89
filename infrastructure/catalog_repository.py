"""SQL behind the catalog port: one-statement snapshots and upserts addressed by code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.catalog import CatalogSnapshot, HttpMapping, Market, Offer, Source, Vertical
from domain.client_address import NetworkError, canonical_network
from domain.replies import ReplyFormat

# Any constant of our own; `leads db upgrade` uses another one.
CATALOG_LOCK_ID = 7235712349

LOCK = text(f"SELECT pg_advisory_xact_lock({CATALOG_LOCK_ID})")

# One statement, so the five lists come from one snapshot of the database even in READ
# COMMITTED: an export never names an offer whose market it does not list.
SNAPSHOT = text(
    """
    SELECT
      (SELECT coalesce(json_agg(json_build_array(code, name, phone_region) ORDER BY code), '[]')
         FROM markets),
      (SELECT coalesce(json_agg(json_build_array(code, name) ORDER BY code), '[]')
         FROM verticals),
      (SELECT coalesce(json_agg(json_build_array(o.code, o.name, m.code, v.code, o.is_active)
                                ORDER BY o.code), '[]')
         FROM offers o JOIN markets m USING (market_id) JOIN verticals v USING (vertical_id)),
      (SELECT coalesce(json_agg(json_build_array(s.code, s.name, o.code, s.source_key,
                                                 s.is_active, s.source_id, s.require_key,
                                                 s.allowed_networks, s.field_aliases,
                                                 s.key_reuse, s.reply_format)
                                ORDER BY s.code), '[]')
         FROM sources s JOIN offers o USING (offer_id)),
      (SELECT coalesce(json_agg(json_build_array(s.code, mp.hostname, mp.path_prefix,
                                                 mp.is_active)
                                ORDER BY s.code, mp.hostname, mp.path_prefix), '[]')
         FROM source_http_mappings mp JOIN sources s USING (source_id))
    """
)
SAVE_MARKET = text(
    "INSERT INTO markets (code, name, phone_region) VALUES (:code, :name, :phone_region) "
    "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, phone_region = EXCLUDED.phone_region"
)
SAVE_VERTICAL = text(
    "INSERT INTO verticals (code, name) VALUES (:code, :name) "
    "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name"
)
# A code that names nothing gives NULL, which NOT NULL rejects: never a silent no-op.
SAVE_OFFER = text(
    "INSERT INTO offers (code, name, market_id, vertical_id, is_active) VALUES (:code, :name, "
    "(SELECT market_id FROM markets WHERE code = :market), "
    "(SELECT vertical_id FROM verticals WHERE code = :vertical), :active) "
    "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, market_id = EXCLUDED.market_id, "
    "vertical_id = EXCLUDED.vertical_id, is_active = EXCLUDED.is_active"
)
RELEASE_SOURCE_KEYS = text("UPDATE sources SET source_key = NULL WHERE code = ANY(:codes)")
SAVE_SOURCE = text(
    "INSERT INTO sources (code, name, offer_id, source_key, is_active, require_key, "
    "allowed_networks, field_aliases, key_reuse, reply_format) VALUES (:code, :name, "
    "(SELECT offer_id FROM offers WHERE code = :offer), :source_key, :active, :require_key, "
    "CAST(CAST(:allowed_networks AS text[]) AS cidr[]), "
    "CAST(CAST(:field_aliases AS text) AS jsonb), :key_reuse, :reply_format) "
    "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, offer_id = EXCLUDED.offer_id, "
    "source_key = EXCLUDED.source_key, is_active = EXCLUDED.is_active, "
    "require_key = EXCLUDED.require_key, allowed_networks = EXCLUDED.allowed_networks, "
    "field_aliases = EXCLUDED.field_aliases, key_reuse = EXCLUDED.key_reuse, "
    "reply_format = EXCLUDED.reply_format"
)
INSERT_MAPPING = text(
    "INSERT INTO source_http_mappings (source_id, hostname, path_prefix, is_active) "
    "VALUES ((SELECT source_id FROM sources WHERE code = :source), :hostname, :path_prefix, "
    ":active)"
)
UPDATE_MAPPING = text(
    "UPDATE source_http_mappings SET hostname = :hostname, path_prefix = :path_prefix, "
    "is_active = :active "
    "WHERE source_id = (SELECT source_id FROM sources WHERE code = :source) "
    "AND hostname = :stored_hostname AND path_prefix = :stored_path_prefix"
)


def _rows(value: Any) -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(value) if isinstance(value, str) else value
    return rows


def _network(text: str) -> str:
    # A row written with plain SQL may hold a network the catalog refuses (IPv4-mapped):
    # keep its text, so export and check still work and `check` can name it.
    try:
        return canonical_network(text)
    except NetworkError:
        return text


def _source(row: list[Any]) -> Source:
    code, name, offer, source_key, active, _, require_key, networks, aliases, *policies = row
    key_reuse, reply_format = policies
    return Source(
        code=code,
        name=name,
        offer=offer,
        source_key=source_key,
        active=active,
        require_key=require_key,
        allowed_networks=tuple(_network(network) for network in networks),
        field_aliases=tuple(sorted((str(a), str(t)) for a, t in aliases.items())),
        key_reuse=key_reuse,
        reply_format=ReplyFormat(reply_format),
    )


class SqlCatalogRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def lock(self) -> None:
        await self._connection.execute(LOCK)

    async def snapshot(self) -> CatalogSnapshot:
        markets, verticals, offers, sources, mappings = (
            await self._connection.execute(SNAPSHOT)
        ).one()
        source_rows = _rows(sources)
        return CatalogSnapshot(
            markets=tuple(Market(*row) for row in _rows(markets)),
            verticals=tuple(Vertical(*row) for row in _rows(verticals)),
            offers=tuple(Offer(*row) for row in _rows(offers)),
            sources=tuple(_source(row) for row in source_rows),
            mappings=tuple(HttpMapping(*row) for row in _rows(mappings)),
            source_ids={row[0]: row[5] for row in source_rows},
        )

    async def save_market(self, market: Market) -> None:
        await self._connection.execute(
            SAVE_MARKET,
            {"code": market.code, "name": market.name, "phone_region": market.phone_region},
        )

    async def save_vertical(self, vertical: Vertical) -> None:
        await self._connection.execute(
            SAVE_VERTICAL, {"code": vertical.code, "name": vertical.name}
        )

    async def save_offer(self, offer: Offer) -> None:
        await self._connection.execute(
            SAVE_OFFER,
            {
                "code": offer.code,
                "name": offer.name,
                "market": offer.market,
                "vertical": offer.vertical,
                "active": offer.active,
            },
        )

    async def release_source_keys(self, codes: Sequence[str]) -> None:
        await self._connection.execute(RELEASE_SOURCE_KEYS, {"codes": list(codes)})

    async def save_source(self, source: Source) -> None:
        await self._connection.execute(
            SAVE_SOURCE,
            {
                "code": source.code,
                "name": source.name,
                "offer": source.offer,
                "source_key": source.source_key,
                "active": source.active,
                "require_key": source.require_key,
                "allowed_networks": list(source.allowed_networks),
                "field_aliases": json.dumps(source.aliases, ensure_ascii=False),
                "key_reuse": source.key_reuse,
                "reply_format": source.reply_format.value,
            },
        )

    async def save_mapping(self, mapping: HttpMapping, stored: HttpMapping | None) -> None:
        params: dict[str, object] = {
            "source": mapping.source,
            "hostname": mapping.hostname,
            "path_prefix": mapping.path_prefix,
            "active": mapping.active,
        }
        if stored is None:
            await self._connection.execute(INSERT_MAPPING, params)
            return
        params["stored_hostname"] = stored.hostname
        params["stored_path_prefix"] = stored.path_prefix
        await self._connection.execute(UPDATE_MAPPING, params)
