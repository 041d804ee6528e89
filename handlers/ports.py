"""What handlers need from the outside world, declared here and implemented in infrastructure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar
from uuid import UUID

from domain.client_address import Address, Network
from domain.lead import LeadView

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    """A value read from the catalog, with the catalog version it was read at (one statement)."""

    value: T
    version: int


@dataclass(frozen=True, slots=True)
class SourceBinding:
    """An active source of an active offer, with what classification binds a lead to and
    what the source asks of the leads it takes (publisher intake; the defaults ask nothing).

    `field_aliases` holds only the usable aliases (`domain.aliases.usable_aliases`), folded
    name → target, as `apply_aliases` takes them.
    """

    source_id: int
    source_key: str | None
    offer_id: int
    market_id: int
    vertical_id: int
    phone_region: str | None
    require_key: bool = False
    allowed_networks: tuple[Network, ...] = ()
    field_aliases: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class MappedSource:
    path_prefix: str
    source: SourceBinding


@dataclass(frozen=True, slots=True)
class NewLead:
    lead_id: UUID
    source: SourceBinding
    idempotency_key: str
    idempotency_key_origin: str
    is_test: bool
    contact: Mapping[str, str | None]
    normalized_email: str | None
    normalized_phone: str | None
    attributes: Mapping[str, object]
    received_host: str | None
    received_path: str
    # Who posted it (NULL for a lead with no HTTP client, e.g. imported from a file).
    client_ip: Address | None
    user_agent: str | None


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
    async def mapped_to_host(self, hostname: str) -> Versioned[Sequence[MappedSource]] | None: ...


class LeadRepository(Protocol):
    async def add(self, lead: NewLead, catalog_version: int) -> Written:
        """One statement: insert unless `(source_id, idempotency_key)` exists, and only while
        the catalog is still at `catalog_version` and the lead's source still active and bound
        as `lead.source` says."""
        ...

    async def get(self, source_id: int, idempotency_key: str) -> LeadView | None: ...


class Transactional(Protocol):
    """One database transaction: rolled back on exit unless `commit()` was awaited."""

    async def commit(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class LeadStore(Protocol):
    """The lead path's database access: one pooled connection, no transaction block; each
    statement commits on its own (the write is a single statement)."""

    sources: SourceRepository
    leads: LeadRepository

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class LeadStoreFactory(Protocol):
    def __call__(self) -> LeadStore: ...
