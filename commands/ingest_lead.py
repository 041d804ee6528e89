"""`IngestLead`: create one posted lead exactly once, classified to its source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from commands.base import Command


@dataclass(frozen=True, slots=True)
class LeadIngested:
    """The lead as stored; `replayed` is true when it already existed."""

    lead_id: UUID
    source_id: int
    offer_id: int
    market_id: int
    vertical_id: int
    idempotency_key: str
    idempotency_key_origin: str
    status: str
    replayed: bool


@dataclass(frozen=True, slots=True)
class IngestLead(Command[LeadIngested]):
    """A posted lead, as the client sent it.

    `source_id` and `source_key` are passed as posted (their errors have their own codes);
    `client_idempotency_key` is already validated and reconciled between header and body.
    `host` and `path` are where the request arrived, before canonicalization.
    """

    source_id: int | None
    source_key: object
    client_idempotency_key: str | None
    contact: Mapping[str, str | None]
    is_test: bool
    attributes: Mapping[str, object]
    host: str | None
    path: str
