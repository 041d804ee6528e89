"""Handles `IngestLead`: classify, normalize, key, and insert exactly once, in one statement.

Classification reads the catalog through the per-process `SourceCache`; the write is one
autocommit statement that inserts only while the catalog is still at the version the source
was read at. A stale read is forgotten and done again, so catalog changes (deactivation,
rebinding, keys, mappings) apply to every lead posted after they commit, with no TTL. A
rejection that came from cached answers is confirmed against the database before it is given.
"""

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
from domain.errors import (
    InvalidSource,
    InvalidSourceKey,
    LeadError,
    ServiceUnavailable,
    UnmappedSource,
)
from domain.idempotency import derive_idempotency_key, lead_id_for
from domain.normalization import normalize_email, normalize_phone
from handlers.ports import (
    LeadStoreFactory,
    NewLead,
    SourceBinding,
    SourceRepository,
    Versioned,
)
from handlers.source_cache import SourceCache

# Attempts at classifying and writing one lead. Another is needed when the catalog changed
# between the read and the write (stale), when a rejection came from cached answers (it is
# confirmed against the database), or when a replayed key's row vanished before it was read
# (deleted by an operator). Past them, 503: the request is safe to retry.
MAX_ATTEMPTS = 3


class IngestLeadHandler:
    def __init__(self, store_factory: LeadStoreFactory, cache: SourceCache) -> None:
        self._store_factory = store_factory
        self._cache = cache

    async def __call__(self, command: IngestLead) -> LeadIngested:
        hostname = canonical_hostname(command.host) if command.host else None
        origin = _Origin(hostname, canonical_path(command.path))
        fresh = False
        async with self._store_factory() as store:
            for _ in range(MAX_ATTEMPTS):
                sources = self._cache.reading_through(store.sources, fresh=fresh)
                try:
                    source = await _resolve_source(sources, command, origin)
                    lead = _new_lead(source.value, command, origin)
                except LeadError as rejection:
                    if (
                        fresh
                        or not sources.served_from_cache
                        or isinstance(rejection, ServiceUnavailable)
                    ):
                        raise
                    fresh = True  # decided from cached answers: confirm with the database
                    continue
                written = await store.leads.add(lead, source.version)
                if written.stale:
                    self._cache.forget(source.version)
                    fresh = True
                    continue
                if written.lead is not None:
                    return LeadIngested(written.lead, replayed=False)
                # A new statement: it sees the row a concurrent request just committed.
                view = await store.leads.get(lead.source.source_id, lead.idempotency_key)
                if view is not None:
                    return LeadIngested(view, replayed=True)
        raise ServiceUnavailable() from RuntimeError(
            f"no lead written in {MAX_ATTEMPTS} attempts: the catalog kept changing or the "
            "lead kept vanishing"
        )


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where the lead arrived, canonical: what HTTP mapping matches and what is stored."""

    hostname: str | None
    path: str


async def _resolve_source(
    sources: SourceRepository, command: IngestLead, origin: _Origin
) -> Versioned[SourceBinding]:
    """SPEC §5: `source_id`, else `source_key`, else the HTTP mapping of host and path."""
    if command.source_id is not None:
        source = await sources.by_id(command.source_id)
        if source is None:
            raise InvalidSource(reason="not_found")
        own_key = source.value.source_key
        if not is_absent(command.source_key) and (
            own_key is None or _key_or_none(command.source_key) != own_key
        ):
            raise InvalidSourceKey(
                "source_key does not belong to the source named by source_id.",
                reason="conflicts_with_source_id",
            )
        return source
    if not is_absent(command.source_key):
        if not isinstance(command.source_key, str):
            raise InvalidSourceKey("source_key must be a string.", reason="malformed")
        source = await sources.by_key(canonical_source_key(command.source_key))
        if source is None:
            raise InvalidSourceKey(reason="not_found")
        return source
    if origin.hostname is None:
        raise UnmappedSource(reason="invalid_host")
    mapped = await sources.mapped_to_host(origin.hostname)
    if mapped is None:
        raise UnmappedSource()
    source_id = select_mapping(
        (MappingCandidate(m.source.source_id, m.path_prefix) for m in mapped.value), origin.path
    )
    chosen = next(m.source for m in mapped.value if m.source.source_id == source_id)
    return Versioned(chosen, mapped.version)


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
