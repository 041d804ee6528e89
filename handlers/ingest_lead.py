"""Handles `IngestLead`: classify, normalize, key, and insert exactly once, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from commands.ingest_lead import IngestLead, LeadIngested
from domain.classification import (
    MappingCandidate,
    canonical_hostname,
    canonical_path,
    canonical_source_key,
    is_absent,
    select_mapping,
)
from domain.errors import InvalidSource, InvalidSourceKey, LeadError, UnmappedSource
from domain.idempotency import derive_idempotency_key, lead_id_for
from domain.normalization import normalize_email, normalize_phone
from handlers.ports import NewLead, SourceBinding, UnitOfWork, UnitOfWorkFactory

# A replayed key whose row disappears between our insert and our read (deleted by an
# operator) is retried this many times before giving up.
MAX_INSERT_ATTEMPTS = 3


class LeadVanished(RuntimeError):
    pass


class IngestLeadHandler:
    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def __call__(self, command: IngestLead) -> LeadIngested:
        hostname = canonical_hostname(command.host) if command.host else None
        origin = _Origin(hostname, canonical_path(command.path))
        async with self._uow_factory() as uow:
            source = await _resolve_source(uow, command, origin)
            lead = _new_lead(source, command, origin)
            for _ in range(MAX_INSERT_ATTEMPTS):
                view = await uow.leads.add(lead)
                if view is not None:
                    await uow.commit()
                    return LeadIngested(view, replayed=False)
                # A new statement: it sees the row a concurrent request just committed.
                view = await uow.leads.get(source.source_id, lead.idempotency_key)
                if view is not None:
                    await uow.commit()
                    return LeadIngested(view, replayed=True)
        raise LeadVanished(f"lead {lead.lead_id} kept conflicting and vanishing")


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where the lead arrived, canonical: what HTTP mapping matches and what is stored."""

    hostname: str | None
    path: str


async def _resolve_source(uow: UnitOfWork, command: IngestLead, origin: _Origin) -> SourceBinding:
    """SPEC §5: `source_id`, else `source_key`, else the HTTP mapping of host and path."""
    if command.source_id is not None:
        source = await uow.sources.by_id(command.source_id)
        if source is None:
            raise InvalidSource(reason="not_found")
        if not is_absent(command.source_key) and (
            source.source_key is None or _key_or_none(command.source_key) != source.source_key
        ):
            raise InvalidSourceKey(
                "source_key does not belong to the source named by source_id.",
                reason="conflicts_with_source_id",
            )
        return source
    if not is_absent(command.source_key):
        if not isinstance(command.source_key, str):
            raise InvalidSourceKey("source_key must be a string.", reason="malformed")
        source = await uow.sources.by_key(canonical_source_key(command.source_key))
        if source is None:
            raise InvalidSourceKey(reason="not_found")
        return source
    if origin.hostname is None:
        raise UnmappedSource(reason="invalid_host")
    mapped = await uow.sources.mapped_to_host(origin.hostname)
    source_id = select_mapping(
        (MappingCandidate(m.source.source_id, m.path_prefix) for m in mapped), origin.path
    )
    return next(m.source for m in mapped if m.source.source_id == source_id)


def _key_or_none(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return canonical_source_key(value)
    except LeadError:
        return None


def _new_lead(source: SourceBinding, command: IngestLead, origin: _Origin) -> NewLead:
    normalized_email = normalize_email(command.contact.get("email"))
    normalized_phone = normalize_phone(command.contact.get("phone"), source.phone_region)
    if command.client_idempotency_key is not None:
        key, key_origin = command.client_idempotency_key, "client"
    else:
        key = derive_idempotency_key(
            command.contact,
            normalized_email=normalized_email,
            normalized_phone=normalized_phone,
            is_test=command.is_test,
            attributes=command.attributes,
        )
        key_origin = "derived"
    return NewLead(
        lead_id=lead_id_for(source.source_id, key),
        source=source,
        idempotency_key=key,
        idempotency_key_origin=key_origin,
        is_test=command.is_test,
        contact=command.contact,
        normalized_email=normalized_email,
        normalized_phone=normalized_phone,
        attributes=command.attributes,
        received_host=origin.hostname,
        received_path=origin.path,
    )
