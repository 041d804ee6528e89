"""What handlers need from the outside world, declared here and implemented in infrastructure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from queries.leads import LeadView


@dataclass(frozen=True, slots=True)
class SourceBinding:
    """An active source of an active offer, with what classification binds a lead to."""

    source_id: int
    source_key: str | None
    offer_id: int
    market_id: int
    vertical_id: int
    phone_region: str | None


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


class SourceRepository(Protocol):
    async def by_id(self, source_id: int) -> SourceBinding | None: ...
    async def by_key(self, source_key: str) -> SourceBinding | None: ...
    async def mapped_to_host(self, hostname: str) -> Sequence[MappedSource]: ...


class LeadRepository(Protocol):
    async def add(self, lead: NewLead) -> LeadView | None:
        """Insert unless `(source_id, idempotency_key)` exists; None when it did."""
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


class UnitOfWork(Transactional, Protocol):
    sources: SourceRepository
    leads: LeadRepository


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
