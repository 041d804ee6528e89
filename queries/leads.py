"""`GetLead`: the current state of one lead of a source, by its id.

Plain SQL returning the one result shape, `domain.lead.LeadView` (its fields are the columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from domain.lead import LEAD_VIEW_FIELDS, LeadView
from queries.base import Query

LEAD_VIEW_COLUMNS = ", ".join(LEAD_VIEW_FIELDS)
LEAD_BY_ID = (
    f"SELECT {LEAD_VIEW_COLUMNS}, fingerprint FROM leads WHERE source_id = $1 AND lead_id = $2"
)


@dataclass(frozen=True, slots=True)
class StoredLead:
    """A lead as stored: its view, and the fingerprint of the content it was created with
    (None for a lead stored before fingerprints, or erased)."""

    view: LeadView
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class GetLead(Query[StoredLead | None]):
    """The lead `lead_id` of `source_id`, as committed when the statement starts; None when
    there is none. A lead's id is a function of the key its source created it under
    (domain/idempotency.py), so this is also the lead of that key, erased leads included,
    whose derived key erasure replaced."""

    source_id: int
    lead_id: UUID


class Rows(Protocol):
    """A connection that runs a positional-parameter query for one row (asyncpg's does)."""

    async def fetchrow(self, query: str, *args: object) -> Any: ...


class GetLeadHandler:
    """Asked on the connection it is given: a replay asks it on its lead store's, one more
    statement within the same deadline."""

    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def __call__(self, query: GetLead) -> StoredLead | None:
        row = await self._rows.fetchrow(LEAD_BY_ID, query.source_id, query.lead_id)
        return None if row is None else StoredLead(LeadView.from_row(row), row["fingerprint"])
