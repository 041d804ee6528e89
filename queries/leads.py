"""`GetLead`: the current state of one lead, by the key its source created it under.

Plain SQL returning the one result shape, `domain.lead.LeadView` (its fields are the columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from domain.lead import LEAD_VIEW_FIELDS, LeadView
from queries.base import Query

LEAD_VIEW_COLUMNS = ", ".join(LEAD_VIEW_FIELDS)
LEAD_BY_IDEMPOTENCY_KEY = (
    f"SELECT {LEAD_VIEW_COLUMNS} FROM leads WHERE source_id = $1 AND idempotency_key = $2"
)


@dataclass(frozen=True, slots=True)
class GetLead(Query[LeadView | None]):
    """The lead `source_id` created under `idempotency_key`, as committed when the statement
    starts; None when there is none."""

    source_id: int
    idempotency_key: str


class Rows(Protocol):
    """A connection that runs a positional-parameter query for one row (asyncpg's does)."""

    async def fetchrow(self, query: str, *args: object) -> Any: ...


class GetLeadHandler:
    """Asked on the connection it is given: a replay asks it on its lead store's, one more
    statement within the same deadline."""

    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def __call__(self, query: GetLead) -> LeadView | None:
        row = await self._rows.fetchrow(
            LEAD_BY_IDEMPOTENCY_KEY, query.source_id, query.idempotency_key
        )
        return None if row is None else LeadView.from_row(row)
