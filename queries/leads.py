"""Read side for leads: the current state of one lead, as a small immutable view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

LEAD_VIEW_COLUMNS = (
    "lead_id, source_id, offer_id, market_id, vertical_id, "
    "idempotency_key, idempotency_key_origin, status"
)


@dataclass(frozen=True, slots=True)
class LeadView:
    lead_id: UUID
    source_id: int
    offer_id: int
    market_id: int
    vertical_id: int
    idempotency_key: str
    idempotency_key_origin: str
    status: str

    @classmethod
    def from_row(cls, row: Any) -> LeadView:
        return cls(*row)


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
