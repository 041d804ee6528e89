"""Read side for leads: the current state of one lead, as a small immutable view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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


_LEAD_BY_IDEMPOTENCY_KEY = text(
    f"SELECT {LEAD_VIEW_COLUMNS} FROM leads "
    "WHERE source_id = :source_id AND idempotency_key = :idempotency_key"
)


async def get_lead_by_idempotency_key(
    connection: AsyncConnection, source_id: int, idempotency_key: str
) -> LeadView | None:
    """The lead a source created under this key, as committed when the statement starts."""
    result = await connection.execute(
        _LEAD_BY_IDEMPOTENCY_KEY, {"source_id": source_id, "idempotency_key": idempotency_key}
    )
    row = result.first()
    return None if row is None else LeadView.from_row(row)
