"""Read side for leads: the current state of one lead, as a small immutable view.

The columns read are derived from `domain.lead.LeadView`, the one definition of the shape.
"""

from __future__ import annotations

from typing import Any, Protocol

from domain.lead import LEAD_VIEW_FIELDS, KeyOrigin, LeadView

__all__ = [
    "LEAD_BY_IDEMPOTENCY_KEY",
    "LEAD_VIEW_COLUMNS",
    "KeyOrigin",
    "LeadView",
    "get_lead_by_idempotency_key",
]

LEAD_VIEW_COLUMNS = ", ".join(LEAD_VIEW_FIELDS)


class RowReader(Protocol):
    """Any connection that runs a positional-parameter query for one row (asyncpg's does)."""

    async def fetchrow(self, query: str, *args: object) -> Any: ...


LEAD_BY_IDEMPOTENCY_KEY = (
    f"SELECT {LEAD_VIEW_COLUMNS} FROM leads WHERE source_id = $1 AND idempotency_key = $2"
)


async def get_lead_by_idempotency_key(
    connection: RowReader, source_id: int, idempotency_key: str
) -> LeadView | None:
    """The lead a source created under this key, as committed when the statement starts."""
    row = await connection.fetchrow(LEAD_BY_IDEMPOTENCY_KEY, source_id, idempotency_key)
    return None if row is None else LeadView.from_row(row)
