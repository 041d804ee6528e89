"""SQL behind the ingest handler's repositories: prepared statements on one asyncpg connection.

Every catalog read returns the catalog version in the same statement (one snapshot), and the
write of a new lead is one statement that checks that version and inserts (see WRITE_LEAD).
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from domain.aliases import usable_aliases
from domain.consent import CONSENT_COLUMNS
from domain.fields import CONTACT_FIELDS
from domain.lead import LeadView, NewLead
from domain.replies import ReplyFormat
from domain.sources import MappedSource, SourceBinding, Versioned
from handlers.ingest_lead_ports import Written
from infrastructure.sql import Statement
from queries.leads import LEAD_VIEW_COLUMNS

# Joined to the offer and market so one statement gives everything a lead is bound to, what
# the source asks of its leads (key required, networks, aliases), and the catalog version that
# this exact state of the catalog carries. The aliases are read as JSON text, decoded here, so
# the answer does not depend on the connection's jsonb codec.
_SOURCE_COLUMNS = (
    "s.source_id, s.source_key, o.offer_id, o.market_id, o.vertical_id, m.phone_region, "
    "s.require_key, s.allowed_networks, CAST(s.field_aliases AS text) AS field_aliases, "
    "s.key_reuse, s.reply_format, "
    "v.version AS catalog_version"
)
_ACTIVE_SOURCES = (
    "sources s JOIN offers o ON o.offer_id = s.offer_id "
    "JOIN markets m ON m.market_id = o.market_id CROSS JOIN catalog_version v"
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

# The columns of a new lead, each bound from the parameter of the same name: the lead's own
# fields, its source's bindings, its contact fields, its consent evidence and its attributes.
_BINDINGS = ("source_id", "offer_id", "market_id", "vertical_id")
_OWN = (
    *("lead_id", "idempotency_key", "idempotency_key_origin", "is_test", "normalized_email"),
    *("normalized_phone", "received_host", "received_path", "client_ip", "user_agent"),
    "fingerprint",
)
LEAD_COLUMNS = (*_OWN, *_BINDINGS, *CONTACT_FIELDS, *CONSENT_COLUMNS, "attributes")
LEAD_VALUES = ", ".join(
    "CAST(:attributes AS jsonb)" if column == "attributes" else f":{column}"
    for column in LEAD_COLUMNS
)
# The lead's bindings as the handler read them, still current: the catalog is at the version
# they were read at (any catalog write bumps it), and, should that check ever be bypassed
# (triggers disabled), the source is still active, of an active offer, bound the same way.
CURRENT_SOURCE = (
    "SELECT FROM sources s JOIN offers o ON o.offer_id = s.offer_id "
    "JOIN catalog_version v ON v.version = :catalog_version "
    "WHERE s.source_id = :source_id AND s.is_active AND o.is_active "
    "AND o.offer_id = :offer_id AND o.market_id = :market_id AND o.vertical_id = :vertical_id"
)
# No conflict target: both unique indexes, (source_id, idempotency_key) and the primary key
# (source_id, lead_id), must be arbiters. lead_id is derived from (source_id,
# idempotency_key), so a conflict on either is the same lead; naming only the first lets two
# racing inserts of one lead fail on the primary key with a unique violation instead of doing
# nothing.
INSERT_CURRENT_LEAD = (
    f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) SELECT {LEAD_VALUES} FROM current_source "
    f"ON CONFLICT DO NOTHING RETURNING {LEAD_VIEW_COLUMNS}"
)
# One statement, in autocommit: one round trip, one transaction. It always returns one row:
# `current` is false when the catalog moved on (nothing written); otherwise the lead's columns
# are the created lead, or NULL when the key already existed (a replay or a lost race).
WRITE_LEAD = Statement(
    f"WITH current_source AS ({CURRENT_SOURCE}), inserted AS ({INSERT_CURRENT_LEAD}) "
    "SELECT EXISTS (SELECT FROM current_source) AS current, inserted.* "
    "FROM (VALUES (true)) AS one_row (always) LEFT JOIN inserted ON always"
)


def _aliases(stored: str) -> dict[str, str]:
    """The usable aliases of a stored `field_aliases` object; rows written with plain SQL may
    hold others, which never apply (`leads catalog check` reports them)."""
    if stored == "{}":
        return {}
    return usable_aliases(json.loads(stored).items())


def _binding(row: Any) -> SourceBinding:
    return SourceBinding(
        **{
            name: row[name]
            for name in (*_BINDINGS, "source_key", "phone_region", "require_key", "key_reuse")
        },
        allowed_networks=tuple(row["allowed_networks"]),  # asyncpg reads cidr as networks
        reply_format=ReplyFormat(row["reply_format"]),
        field_aliases=_aliases(row["field_aliases"]),
    )


class SqlSourceRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def by_id(self, source_id: int) -> Versioned[SourceBinding] | None:
        return await self._one(SOURCE_BY_ID, source_id)

    async def by_key(self, source_key: str) -> Versioned[SourceBinding] | None:
        return await self._one(SOURCE_BY_KEY, source_key)

    async def mapped_to_host(self, hostname: str) -> Versioned[tuple[MappedSource, ...]] | None:
        rows = await self._connection.fetch(SOURCES_MAPPED_TO_HOST.sql, hostname)
        if not rows:
            return None
        # One statement, one snapshot: every row carries the same version.
        mapped = tuple(MappedSource(row["path_prefix"], _binding(row)) for row in rows)
        return Versioned(mapped, rows[0]["catalog_version"])

    async def _one(self, statement: Statement, value: object) -> Versioned[SourceBinding] | None:
        row = await self._connection.fetchrow(statement.sql, value)
        return None if row is None else Versioned(_binding(row), row["catalog_version"])


class SqlLeadRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def add(self, lead: NewLead, catalog_version: int) -> Written:
        # The value of each of LEAD_COLUMNS, and the version the lead's source was read at.
        params = {
            **{name: getattr(lead.source, name) for name in _BINDINGS},
            **{name: getattr(lead, name) for name in _OWN},
            **{name: lead.contact.get(name) for name in CONTACT_FIELDS},
            **lead.consent,
            "attributes": json.dumps(lead.attributes, ensure_ascii=False, separators=(",", ":")),
            "catalog_version": catalog_version,
        }
        row = await self._connection.fetchrow(WRITE_LEAD.sql, *WRITE_LEAD.args(params))
        if not row["current"]:
            return Written(lead=None, stale=True)
        if row["lead_id"] is None:
            return Written(lead=None, stale=False)
        return Written(lead=LeadView.from_row(row), stale=False)
