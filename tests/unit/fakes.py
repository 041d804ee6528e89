"""In-memory adapters for the ingest handler's ports: a fake catalog, lead store and unit of work.

They keep the rules the SQL keeps, so handler tests can run through the real bus without a
database: only active sources of active offers resolve; a lead is unique by
`(source_id, idempotency_key)` and by `lead_id`; nothing is visible to later units of work
unless `commit()` was awaited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import punq

from commands.ingest_lead import IngestLead
from handlers.bus import CommandBus
from handlers.ports import MappedSource, NewLead, SourceBinding, UnitOfWorkFactory
from infrastructure.container import HANDLERS
from queries.leads import LeadView


@dataclass
class FakeOffer:
    offer_id: int
    market_id: int
    vertical_id: int
    phone_region: str | None = None
    active: bool = True


@dataclass
class FakeSource:
    source_id: int
    offer: FakeOffer
    source_key: str | None = None
    active: bool = True


@dataclass
class FakeMapping:
    source_id: int
    hostname: str
    path_prefix: str = "/"
    active: bool = True


@dataclass
class FakeDatabase:
    """What the fake units of work read and commit to."""

    sources: dict[int, FakeSource] = field(default_factory=dict)
    mappings: list[FakeMapping] = field(default_factory=list)
    leads: dict[tuple[int, str], NewLead] = field(default_factory=dict)
    statuses: dict[tuple[int, str], str] = field(default_factory=dict)
    commits: int = 0
    rollbacks: int = 0
    # Simulates an operator deleting the row between the insert's conflict and the read.
    vanishing: bool = False

    def add_source(
        self,
        source_id: int,
        offer: FakeOffer,
        source_key: str | None = None,
        *,
        active: bool = True,
    ) -> FakeSource:
        source = self.sources[source_id] = FakeSource(source_id, offer, source_key, active)
        return source

    def view(self, lead: NewLead) -> LeadView:
        key = (lead.source.source_id, lead.idempotency_key)
        return LeadView(
            lead_id=lead.lead_id,
            source_id=lead.source.source_id,
            offer_id=lead.source.offer_id,
            market_id=lead.source.market_id,
            vertical_id=lead.source.vertical_id,
            idempotency_key=lead.idempotency_key,
            idempotency_key_origin=lead.idempotency_key_origin,  # type: ignore[arg-type]
            status=self.statuses.get(key, "received"),
        )

    def binding(self, source: FakeSource) -> SourceBinding | None:
        if not (source.active and source.offer.active):
            return None
        offer = source.offer
        return SourceBinding(
            source.source_id,
            source.source_key,
            offer.offer_id,
            offer.market_id,
            offer.vertical_id,
            offer.phone_region,
        )


class FakeSourceRepository:
    def __init__(self, database: FakeDatabase) -> None:
        self._database = database

    async def by_id(self, source_id: int) -> SourceBinding | None:
        source = self._database.sources.get(source_id)
        return None if source is None else self._database.binding(source)

    async def by_key(self, source_key: str) -> SourceBinding | None:
        for source in self._database.sources.values():
            if source.source_key == source_key:
                return self._database.binding(source)
        return None

    async def mapped_to_host(self, hostname: str) -> Sequence[MappedSource]:
        mapped = []
        for mapping in self._database.mappings:
            source = self._database.sources[mapping.source_id]
            binding = self._database.binding(source)
            if mapping.active and mapping.hostname == hostname and binding is not None:
                mapped.append(MappedSource(mapping.path_prefix, binding))
        return mapped


class FakeLeadRepository:
    """Inserts are pending in the unit of work until it commits, as in a transaction."""

    def __init__(self, database: FakeDatabase) -> None:
        self._database = database
        self.pending: dict[tuple[int, str], NewLead] = {}

    def _visible(self) -> dict[tuple[int, str], NewLead]:
        return {**self._database.leads, **self.pending}

    async def add(self, lead: NewLead) -> LeadView | None:
        visible = self._visible()
        key = (lead.source.source_id, lead.idempotency_key)
        if key in visible or any(v.lead_id == lead.lead_id for v in visible.values()):
            return None  # ON CONFLICT DO NOTHING
        self.pending[key] = lead
        return self._database.view(lead)

    async def get(self, source_id: int, idempotency_key: str) -> LeadView | None:
        if self._database.vanishing:
            return None
        lead = self._visible().get((source_id, idempotency_key))
        return None if lead is None else self._database.view(lead)


class FakeUnitOfWork:
    def __init__(self, database: FakeDatabase) -> None:
        self._database = database
        self.sources = FakeSourceRepository(database)
        self.leads = FakeLeadRepository(database)
        self.committed = False

    async def commit(self) -> None:
        self._database.leads.update(self.leads.pending)
        self.leads.pending.clear()
        self._database.commits += 1
        self.committed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            self.leads.pending.clear()
            self._database.rollbacks += 1


@dataclass
class FakeUnitOfWorkFactory:
    database: FakeDatabase = field(default_factory=FakeDatabase)

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.database)


def bus_with(uow_factory: FakeUnitOfWorkFactory) -> CommandBus:
    """The real command bus and handler table, wired by punq to the fake unit of work."""
    container = punq.Container()
    container.register(UnitOfWorkFactory, instance=uow_factory)
    container.register(HANDLERS[IngestLead])
    return CommandBus(HANDLERS, container.resolve)
