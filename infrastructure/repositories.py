"""SQL behind the ingest handler's repositories: prepared statements on one asyncpg connection."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from domain.submission import CONTACT_FIELDS
from handlers.ports import MappedSource, NewLead, SourceBinding
from infrastructure.sql import Statement
from queries.leads import LEAD_VIEW_COLUMNS, LeadView, get_lead_by_idempotency_key

# Joined to the offer and market so one statement gives everything a lead is bound to.
_SOURCE_COLUMNS = (
    "s.source_id, s.source_key, o.offer_id, o.market_id, o.vertical_id, m.phone_region"
)
_ACTIVE_SOURCES = (
    "sources s JOIN offers o ON o.offer_id = s.offer_id JOIN markets m ON m.market_id = o.market_id"
)
SOURCE_BY_ID = Statement(
    f"SELECT {_SOURCE_COLUMNS} FROM {_ACTIVE_SOURCES} "
    "WHERE s.source_id = :source_id AND s.is_active AND o.is_active"
)
SOURCE_BY_KEY = Statement(
    f"SELECT {_SOURCE_COLUMNS} FROM {_ACTIVE_SOURCES} "
    "WHERE s.source_key = :source_key AND s.is_active AND o.is_active"
)
SOURCES_MAPPED_TO_HOST = Statement(
    f"SELECT mp.path_prefix, {_SOURCE_COLUMNS} FROM source_http_mappings mp "
    f"JOIN {_ACTIVE_SOURCES} ON s.source_id = mp.source_id "
    "WHERE mp.hostname = :hostname AND mp.is_active AND s.is_active AND o.is_active"
)
# No conflict target: both unique indexes, (source_id, idempotency_key) and the primary key
# lead_id, must be arbiters. lead_id is derived from (source_id, idempotency_key), so a
# conflict on either is the same lead; naming only the first lets two racing inserts of one
# lead fail on the primary key with a unique violation instead of doing nothing.
INSERT_LEAD = Statement(
    "INSERT INTO leads (lead_id, source_id, offer_id, market_id, vertical_id, "
    "idempotency_key, idempotency_key_origin, is_test, email, normalized_email, phone, "
    "normalized_phone, first_name, last_name, address, city, region, postal_code, country, "
    "attributes, received_host, received_path) VALUES (:lead_id, :source_id, :offer_id, "
    ":market_id, :vertical_id, :idempotency_key, :idempotency_key_origin, :is_test, :email, "
    ":normalized_email, :phone, :normalized_phone, :first_name, :last_name, :address, :city, "
    ":region, :postal_code, :country, CAST(:attributes AS jsonb), :received_host, "
    ":received_path) ON CONFLICT DO NOTHING "
    f"RETURNING {LEAD_VIEW_COLUMNS}"
)


class SqlSourceRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def by_id(self, source_id: int) -> SourceBinding | None:
        row = await self._connection.fetchrow(SOURCE_BY_ID.sql, source_id)
        return None if row is None else SourceBinding(*row)

    async def by_key(self, source_key: str) -> SourceBinding | None:
        row = await self._connection.fetchrow(SOURCE_BY_KEY.sql, source_key)
        return None if row is None else SourceBinding(*row)

    async def mapped_to_host(self, hostname: str) -> Sequence[MappedSource]:
        rows = await self._connection.fetch(SOURCES_MAPPED_TO_HOST.sql, hostname)
        return [MappedSource(row[0], SourceBinding(*row[1:])) for row in rows]


def insert_lead_params(lead: NewLead) -> dict[str, object]:
    source = lead.source
    return {
        "lead_id": lead.lead_id,
        "source_id": source.source_id,
        "offer_id": source.offer_id,
        "market_id": source.market_id,
        "vertical_id": source.vertical_id,
        "idempotency_key": lead.idempotency_key,
        "idempotency_key_origin": lead.idempotency_key_origin,
        "is_test": lead.is_test,
        "normalized_email": lead.normalized_email,
        "normalized_phone": lead.normalized_phone,
        **{name: lead.contact.get(name) for name in CONTACT_FIELDS},
        "attributes": json.dumps(lead.attributes, ensure_ascii=False, separators=(",", ":")),
        "received_host": lead.received_host,
        "received_path": lead.received_path,
    }


class SqlLeadRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def add(self, lead: NewLead) -> LeadView | None:
        row = await self._connection.fetchrow(
            INSERT_LEAD.sql, *INSERT_LEAD.args(insert_lead_params(lead))
        )
        return None if row is None else LeadView.from_row(row)

    async def get(self, source_id: int, idempotency_key: str) -> LeadView | None:
        return await get_lead_by_idempotency_key(self._connection, source_id, idempotency_key)
