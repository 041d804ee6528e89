"""Handles `IngestLead`: classify, admit, alias, normalize, key, and insert exactly once.

Classification reads the catalog through the per-process `SourceCache`; the write is one
autocommit statement that inserts only while the catalog is still at the version the source
was read at, else the answer is read again. A rejection that came from cached answers is
confirmed against the database before it is given. Once the source is known, before anything
is written: the source admits the lead (its key when required, the client address when it
lists networks), then its field aliases apply, and only then is the idempotency key derived.
A key that already names a lead replays it, unless the source refuses a client key reused with
other content (`key_reuse: reject`, told by the stored fingerprint).
"""

from __future__ import annotations

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
    IdempotencyKeyReused,
    InvalidSource,
    InvalidSourceKey,
    LeadError,
    ServiceUnavailable,
    UnmappedSource,
)
from domain.intake import admit_lead, keys_match
from domain.lead import NewLead
from domain.sources import SourceBinding, Versioned
from handlers.ingest_lead_ports import OpenLeadStore, SourceRepository
from handlers.source_cache import SourceCache
from queries.leads import GetLead

# Attempts at classifying and writing one lead. Another is needed when the catalog changed
# between the read and the write (stale), when a rejection came from cached answers (it is
# confirmed against the database), or when a replayed key's row vanished before it was read
# (deleted by an operator). Past them, 503: the request is safe to retry.
MAX_ATTEMPTS = 3


class IngestLeadHandler:
    def __init__(self, open_store: OpenLeadStore, cache: SourceCache) -> None:
        self._open_store = open_store
        self._cache = cache

    async def __call__(self, command: IngestLead) -> LeadIngested:
        hostname = canonical_hostname(command.host) if command.host else None
        path = canonical_path(command.path)
        fresh = False
        async with self._open_store() as store:
            for _ in range(MAX_ATTEMPTS):
                sources = self._cache.reading_through(store.sources, fresh=fresh)
                try:
                    source = await _classify(sources, command, hostname, path)
                    lead = _new_lead(source.value, command, hostname, path)
                except LeadError:
                    if fresh or not sources.served_from_cache:
                        raise
                    fresh = True  # decided from cached answers: confirm with the database
                    continue
                reply_format = source.value.reply_format
                written = await store.leads.add(lead, source.version)
                if written.lead is not None:
                    return LeadIngested(written.lead, replayed=False, reply_format=reply_format)
                if written.stale:
                    self._cache.forget(source.version)
                    fresh = True
                    continue
                # A new statement: it sees the row a concurrent request just committed.
                stored = await store.get_lead(GetLead(source.value.source_id, lead.lead_id))
                if stored is not None:
                    if _reused(source.value, lead, stored.fingerprint):
                        error = IdempotencyKeyReused()
                        error.reply_format = reply_format
                        raise error
                    return LeadIngested(stored.view, replayed=True, reply_format=reply_format)
        raise ServiceUnavailable() from RuntimeError(
            f"no lead written in {MAX_ATTEMPTS} attempts: the catalog kept changing or the "
            "lead kept vanishing"
        )


async def _classify(
    sources: SourceRepository, command: IngestLead, hostname: str | None, path: str
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
    if hostname is None:
        raise UnmappedSource(reason="invalid_host")
    mapped = await sources.mapped_to_host(hostname)
    if mapped is None:
        raise UnmappedSource()
    source_id = select_mapping(
        (MappingCandidate(m.source.source_id, m.path_prefix) for m in mapped.value), path
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


def _reused(source: SourceBinding, lead: NewLead, stored_fingerprint: str | None) -> bool:
    """Whether a client key comes back with other content at a source that refuses that.
    A lead stored without a fingerprint (before fingerprints, or erased) replays."""
    return (
        source.key_reuse == "reject"
        and lead.idempotency_key_origin == "client"
        and stored_fingerprint is not None
        and stored_fingerprint != lead.fingerprint
    )


def _new_lead(
    source: SourceBinding, command: IngestLead, hostname: str | None, path: str
) -> NewLead:
    """The lead, once its source admits it (domain/intake.py) and its aliases apply; a
    refusal is answered in the source's reply format."""
    client = command.client
    try:
        admit_lead(
            require_key=source.require_key,
            # Classification made sure a presented key is this source's own.
            key_presented=not is_absent(command.source_key),
            # Allowed networks restrict where HTTP posts come from; a lead with no HTTP client
            # (`leads import`, run by an operator with database credentials) has no address.
            allowed_networks=source.allowed_networks if client is not None else (),
            client=client.address if client is not None else None,
        )
        return NewLead.create(
            source,
            command.fields.with_aliases(source.field_aliases),
            command.client_idempotency_key,
            received_host=hostname,
            received_path=path,
            client_ip=client.address if client is not None else None,
            user_agent=client.user_agent if client is not None else None,
        )
    except LeadError as error:
        error.reply_format = source.reply_format
        raise
