"""Handles `IngestLead`: classify, admit, normalize, key, and insert exactly once, in one statement.

Classification reads the catalog through the per-process `SourceCache`; the write is one
autocommit statement that inserts only while the catalog is still at the version the source
was read at. A stale read is forgotten and done again, so catalog changes (deactivation,
rebinding, keys, mappings, what a source asks of its leads) apply to every lead posted after
they commit, with no TTL. A rejection that came from cached answers is confirmed against the
database before it is given.

Once the source is known, before anything is written: the source admits the lead (its key when
required, the client address when it lists networks), then its field aliases rename the posted
fields and the field rules run again, and only then is the idempotency key derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from commands.ingest_lead import IngestLead, LeadIngested
from domain.aliases import apply_aliases
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
from domain.intake import admit_lead, keys_match
from domain.normalization import normalize_email, normalize_phone
from domain.submission import parse_submission
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
                    _admit(source.value, command)
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
        if not is_absent(command.source_key) and not _is_own_key(command.source_key, own_key):
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


def _is_own_key(presented: object, own_key: str | None) -> bool:
    """Whether a presented `source_key` is the source's own key (compared in constant time)."""
    if own_key is None or not isinstance(presented, str):
        return False
    try:
        canonical = canonical_source_key(presented)
    except LeadError:
        return False
    return keys_match(canonical, own_key)


def _admit(source: SourceBinding, command: IngestLead) -> None:
    """The source's own conditions on the leads it takes (domain/intake.py)."""
    client = command.client
    admit_lead(
        require_key=source.require_key,
        # Classification made sure a presented key is this source's own.
        key_presented=not is_absent(command.source_key),
        # Allowed networks restrict where HTTP posts come from; a lead with no HTTP client
        # (`leads import`, run by an operator with database credentials) has no address.
        allowed_networks=source.allowed_networks if client is not None else (),
        client=client.address if client is not None else None,
    )


@dataclass(frozen=True, slots=True)
class _Fields:
    """The typed fields of a lead, after its source's aliases."""

    contact: Mapping[str, str | None]
    is_test: bool
    attributes: Mapping[str, object]


def _fields(source: SourceBinding, command: IngestLead) -> _Fields:
    """The command's fields, or, for a source with aliases, the posted fields renamed by them
    and typed again by the same field rules (only such sources pay for a second pass)."""
    if not source.field_aliases or command.posted is None:
        return _Fields(command.contact, command.is_test, command.attributes)
    submission = parse_submission(apply_aliases(command.posted, source.field_aliases))
    return _Fields(submission.contact, submission.is_test, submission.attributes)


def _new_lead(source: SourceBinding, command: IngestLead, origin: _Origin) -> NewLead:
    fields = _fields(source, command)
    normalized_email = normalize_email(fields.contact.get("email"))
    normalized_phone = normalize_phone(fields.contact.get("phone"), source.phone_region)
    if command.client_idempotency_key is not None:
        key, key_origin = command.client_idempotency_key, "client"
    else:
        key = derive_idempotency_key(
            fields.contact,
            normalized_email=normalized_email,
            normalized_phone=normalized_phone,
            is_test=fields.is_test,
            attributes=fields.attributes,
        )
        key_origin = "derived"
    client = command.client
    return NewLead(
        lead_id=lead_id_for(source.source_id, key),
        source=source,
        idempotency_key=key,
        idempotency_key_origin=key_origin,
        is_test=fields.is_test,
        contact=fields.contact,
        normalized_email=normalized_email,
        normalized_phone=normalized_phone,
        attributes=fields.attributes,
        received_host=origin.hostname,
        received_path=origin.path,
        client_ip=client.address if client is not None else None,
        user_agent=client.user_agent if client is not None else None,
    )
