"""In-memory adapters for the ingest handler's ports: a fake catalog and lead store.

They keep the rules the SQL keeps, so handler tests can run through the real bus without a
database: only active sources of active offers resolve, each answer carries the catalog version
it was read at; a lead is written only while the catalog is still at the version its source was
read at, and is unique by `(source_id, idempotency_key)` and by `lead_id`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import punq

from commands.ingest_lead import IngestLead
from domain.client_address import Network
from domain.lead import LeadView, NewLead
from domain.replies import ReplyFormat
from domain.sources import KeyReuse, MappedSource, SourceBinding, Versioned
from handlers.bus import CommandBus
from handlers.ingest_lead_ports import OpenLeadStore, Written
from handlers.source_cache import SourceCache
from infrastructure.container import HANDLERS
from queries.leads import GetLead, StoredLead


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
    require_key: bool = False
    allowed_networks: tuple[Network, ...] = ()
    # Usable aliases only, folded name -> target, as the SQL repository reads them.
    field_aliases: dict[str, str] = field(default_factory=dict)
    key_reuse: KeyReuse = "replay"
    reply_format: ReplyFormat = ReplyFormat.JSON


@dataclass
class FakeMapping:
    source_id: int
    hostname: str
    path_prefix: str = "/"
    active: bool = True


@dataclass
class FakeDatabase:
    """What the fake lead stores read and write to."""

    sources: dict[int, FakeSource] = field(default_factory=dict)
    mappings: list[FakeMapping] = field(default_factory=list)
    leads: dict[tuple[int, str], NewLead] = field(default_factory=dict)
    statuses: dict[tuple[int, str], str] = field(default_factory=dict)
    # The catalog version: bumped by `change()`, as the triggers bump it on every catalog write.
    version: int = 1
    lookups: int = 0
    writes: int = 0
    # Simulates an operator deleting the row between the insert's conflict and the read.
    vanishing: bool = False
    # Simulates a catalog that changes between every read and every write.
    churn: bool = False

    def add_source(
        self,
        source_id: int,
        offer: FakeOffer,
        source_key: str | None = None,
        *,
        active: bool = True,
        require_key: bool = False,
        allowed_networks: tuple[Network, ...] = (),
        field_aliases: dict[str, str] | None = None,
        key_reuse: KeyReuse = "replay",
        reply_format: ReplyFormat = ReplyFormat.JSON,
    ) -> FakeSource:
        source = self.sources[source_id] = FakeSource(
            source_id,
            offer,
            source_key,
            active,
            require_key,
            allowed_networks,
            dict(field_aliases or {}),
            key_reuse,
            reply_format,
        )
        self.change()
        return source

    def change(self) -> None:
        """A catalog write committed: later writes read at an older version are stale."""
        self.version += 1

    def view(self, lead: NewLead) -> LeadView:
        key = (lead.source.source_id, lead.idempotency_key)
        return LeadView(
            lead_id=lead.lead_id,
            source_id=lead.source.source_id,
            offer_id=lead.source.offer_id,
            market_id=lead.source.market_id,
            vertical_id=lead.source.vertical_id,
            idempotency_key=lead.idempotency_key,
            idempotency_key_origin=lead.idempotency_key_origin,
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
            source.require_key,
            source.allowed_networks,
            dict(source.field_aliases),
            source.key_reuse,
            source.reply_format,
        )


class FakeSourceRepository:
    def __init__(self, database: FakeDatabase) -> None:
        self._database = database

    def _versioned(self, binding: SourceBinding | None) -> Versioned[SourceBinding] | None:
        return None if binding is None else Versioned(binding, self._database.version)

    async def by_id(self, source_id: int) -> Versioned[SourceBinding] | None:
        self._database.lookups += 1
        source = self._database.sources.get(source_id)
        return None if source is None else self._versioned(self._database.binding(source))

    async def by_key(self, source_key: str) -> Versioned[SourceBinding] | None:
        self._database.lookups += 1
        for source in self._database.sources.values():
            if source.source_key == source_key:
                return self._versioned(self._database.binding(source))
        return None

    async def mapped_to_host(self, hostname: str) -> Versioned[tuple[MappedSource, ...]] | None:
        self._database.lookups += 1
        mapped: list[MappedSource] = []
        for mapping in self._database.mappings:
            source = self._database.sources[mapping.source_id]
            binding = self._database.binding(source)
            if mapping.active and mapping.hostname == hostname and binding is not None:
                mapped.append(MappedSource(mapping.path_prefix, binding))
        return Versioned(tuple(mapped), self._database.version) if mapped else None


class FakeLeadRepository:
    """Each write is its own transaction, as the one-statement write in autocommit is."""

    def __init__(self, database: FakeDatabase) -> None:
        self._database = database

    async def add(self, lead: NewLead, catalog_version: int) -> Written:
        database = self._database
        database.writes += 1
        if database.churn:
            database.change()
        source = database.sources.get(lead.source.source_id)
        current = source is not None and database.binding(source) == lead.source
        if catalog_version != database.version or not current:
            return Written(None, stale=True)
        key = (lead.source.source_id, lead.idempotency_key)
        if key in database.leads or any(v.lead_id == lead.lead_id for v in database.leads.values()):
            return Written(None, stale=False)  # ON CONFLICT DO NOTHING
        database.leads[key] = lead
        return Written(database.view(lead), stale=False)


class FakeLeadStore:
    def __init__(self, database: FakeDatabase) -> None:
        self._database = database
        self.sources = FakeSourceRepository(database)
        self.leads = FakeLeadRepository(database)

    async def get_lead(self, query: GetLead) -> StoredLead | None:
        """The read side: a new statement, so it sees every committed lead."""
        if self._database.vanishing:
            return None
        lead = next(
            (
                lead
                for (source_id, _), lead in self._database.leads.items()
                if source_id == query.source_id and lead.lead_id == query.lead_id
            ),
            None,
        )
        return None if lead is None else StoredLead(self._database.view(lead), lead.fingerprint)


@dataclass
class FakeLeadStores:
    """Opens fake lead stores on one database (nothing to release)."""

    database: FakeDatabase = field(default_factory=FakeDatabase)

    def __call__(self) -> nullcontext[FakeLeadStore]:
        return nullcontext(FakeLeadStore(self.database))


def bus_with(open_store: FakeLeadStores) -> CommandBus:
    """The real command bus and handler table, wired by punq to the fake lead store and a
    catalog cache of its own."""
    container = punq.Container()
    container.register(OpenLeadStore, instance=open_store)
    container.register(SourceCache, instance=SourceCache())
    container.register(HANDLERS[IngestLead])
    return CommandBus(HANDLERS, container.resolve)
