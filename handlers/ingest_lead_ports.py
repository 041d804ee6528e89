"""What the ingest handler needs from storage, declared here and implemented in infrastructure."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from domain.lead import LeadView, NewLead
from domain.sources import MappedSource, SourceBinding, Versioned
from queries.base import QueryHandler
from queries.leads import GetLead, StoredLead


@dataclass(frozen=True, slots=True)
class Written:
    """What writing a new lead did: `lead` is the created lead, None when the key already
    existed; `stale` means nothing was written because the catalog version had moved on."""

    lead: LeadView | None
    stale: bool


class SourceRepository(Protocol):
    """Active sources of active offers, each read with its catalog version; None (or no
    mapping) when there is none."""

    async def by_id(self, source_id: int) -> Versioned[SourceBinding] | None: ...
    async def by_key(self, source_key: str) -> Versioned[SourceBinding] | None: ...
    async def mapped_to_host(self, hostname: str) -> Versioned[tuple[MappedSource, ...]] | None: ...


class LeadRepository(Protocol):
    async def add(self, lead: NewLead, catalog_version: int) -> Written:
        """One statement: insert unless `(source_id, idempotency_key)` exists, and only while
        the catalog is still at `catalog_version` and the lead's source still active and bound
        as `lead.source` says."""


class LeadStore(Protocol):
    """One command's database access: one pooled connection, no transaction block (each
    statement commits on its own), all of it under one deadline."""

    sources: SourceRepository
    leads: LeadRepository
    get_lead: QueryHandler[GetLead, StoredLead | None]


# Opens a lead store for one command; leaving it returns the connection.
OpenLeadStore = Callable[[], AbstractAsyncContextManager[LeadStore]]
