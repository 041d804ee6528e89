"""Read side for leads: the current state of one lead, as a small immutable view.

`LeadView` is the one definition of a lead's result shape: the columns read, the HTTP body
(`as_json`) and the OpenAPI response schema (web/openapi.py) are all derived from its fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol
from uuid import UUID

KeyOrigin = Literal["client", "derived"]


@dataclass(frozen=True, slots=True)
class LeadView:
    lead_id: UUID
    source_id: int
    offer_id: int
    market_id: int
    vertical_id: int
    idempotency_key: str
    idempotency_key_origin: KeyOrigin
    status: str

    @classmethod
    def from_row(cls, row: Any) -> LeadView:
        """From a row holding `LEAD_VIEW_COLUMNS` (mapped by name, not position)."""
        return cls(**{name: row[name] for name in LEAD_VIEW_FIELDS})

    def as_json(self) -> dict[str, object]:
        """The lead as a JSON object (fields in declaration order, the id as text)."""
        body: dict[str, object] = {name: getattr(self, name) for name in LEAD_VIEW_FIELDS}
        body["lead_id"] = str(self.lead_id)
        return body


LEAD_VIEW_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(LeadView))
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
