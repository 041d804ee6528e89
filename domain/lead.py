"""A lead's result shape: the one definition read by replays, returned by `IngestLead` and
rendered as the HTTP body; the OpenAPI response schema (web/openapi.py) is derived from it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal
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
