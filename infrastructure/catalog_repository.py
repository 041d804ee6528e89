"""The catalog's database access: one-statement snapshots, and upserts addressed by code in a
transaction that rolls back unless committed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.catalog import CatalogSnapshot, HttpMapping, Market, Offer, Source, Vertical
from domain.client_address import NetworkError, canonical_network
from domain.replies import ReplyFormat
from infrastructure.database_problems import is_unavailable
from infrastructure.engine import terminate, unavailable_on_db_failure

# Any constant of our own; `leads db upgrade` uses another one.
LOCK = text("SELECT pg_advisory_xact_lock(7235712349)")

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
    code, name, offer, key, active, _, require_key, networks, aliases, key_reuse, reply = row
    return Source(
        *(code, name, offer, key, active, require_key),
        allowed_networks=tuple(_network(network) for network in networks),
        field_aliases=tuple(sorted((str(a), str(t)) for a, t in aliases.items())),
        key_reuse=key_reuse,
        reply_format=ReplyFormat(reply),
    )


_SAVE = {Market: SAVE_MARKET, Vertical: SAVE_VERTICAL, Offer: SAVE_OFFER, Source: SAVE_SOURCE}


class SqlCatalogRepository:
    """The catalog on one connection; `commit` ends the transaction `open_catalog_unit_of_work`
    began."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def commit(self) -> None:
        await self._connection.commit()

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

    async def save(self, record: Market | Vertical | Offer | Source) -> None:
        params = dataclasses.asdict(record)
        if isinstance(record, Source):
            params["allowed_networks"] = list(record.allowed_networks)
            params["field_aliases"] = json.dumps(record.aliases, ensure_ascii=False)
            params["reply_format"] = record.reply_format.value
        await self._connection.execute(_SAVE[type(record)], params)

    async def release_source_keys(self, codes: Sequence[str]) -> None:
        await self._connection.execute(RELEASE_SOURCE_KEYS, {"codes": list(codes)})

    async def save_mapping(self, mapping: HttpMapping, stored: HttpMapping | None) -> None:
        params = dataclasses.asdict(mapping)
        if stored is None:
            await self._connection.execute(INSERT_MAPPING, params)
            return
        params["stored_hostname"] = stored.hostname
        params["stored_path_prefix"] = stored.path_prefix
        await self._connection.execute(UPDATE_MAPPING, params)


@asynccontextmanager
async def open_catalog_unit_of_work(engine: AsyncEngine) -> AsyncIterator[SqlCatalogRepository]:
    """Rolled back on leaving unless committed: closing the connection rolls back what its
    transaction did not commit."""
    async with unavailable_on_db_failure():
        connection = await engine.connect()
        try:
            await connection.begin()
            yield SqlCatalogRepository(connection)
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError) or is_unavailable(error):
                # Interrupted or disconnected: its state is unknown, so no rollback on it.
                with contextlib.suppress(Exception):
                    if not connection.invalidated:
                        terminate((await connection.get_raw_connection()).driver_connection)
                        await connection.invalidate()
            raise
        finally:
            with contextlib.suppress(Exception):
                await connection.close()


class SqlCatalogReader:
    """The catalog queries' reader: one snapshot statement, consistent without a transaction
    of ours, on a pooled connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def snapshot(self) -> CatalogSnapshot:
        async with unavailable_on_db_failure(), self._engine.connect() as connection:
            return await SqlCatalogRepository(connection).snapshot()
