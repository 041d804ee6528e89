"""A lead: the one result shape (`LeadView`: read by replays, returned by `IngestLead`, rendered
as the HTTP body and its OpenAPI schema) and a new lead as it is written (`NewLead`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal
from uuid import UUID

from domain.client_address import Address
from domain.consent import consent_columns
from domain.idempotency import content_digest, derived_key, lead_id_for
from domain.normalization import normalize_email, normalize_phone
from domain.sources import SourceBinding
from domain.submission import Submission

KeyOrigin = Literal["client", "derived"]


@dataclass(frozen=True, slots=True)
class LeadView:
    lead_id: UUID
    source_id: int
    offer_id: int
    market_id: int
    vertical_id: int
    idempotency_key: str
    idempotency_key_origin: KeyOrigin
    status: str

    @classmethod
    def from_row(cls, row: Any) -> LeadView:
        """From a row holding `LEAD_VIEW_FIELDS` (mapped by name, not position)."""
        return cls(**{name: row[name] for name in LEAD_VIEW_FIELDS})

    def as_json(self) -> dict[str, object]:
        """The lead as a JSON object (fields in declaration order, the id as text)."""
        body: dict[str, object] = {name: getattr(self, name) for name in LEAD_VIEW_FIELDS}
        body["lead_id"] = str(self.lead_id)
        return body


LEAD_VIEW_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(LeadView))


@dataclass(frozen=True, slots=True)
class NewLead:
    lead_id: UUID
    source: SourceBinding
    idempotency_key: str
    idempotency_key_origin: KeyOrigin
    is_test: bool
    contact: Mapping[str, str | None]
    normalized_email: str | None
    normalized_phone: str | None
    attributes: Mapping[str, object]
    # The consent columns (domain/consent.py: CONSENT_COLUMNS).
    consent: Mapping[str, object]
    received_host: str | None
    received_path: str
    # SHA-256 of its content (the derived key's digest, whatever its key): what tells a client
    # key reused with another payload from a retry.
    fingerprint: str
    # Who posted it (NULL for a lead with no HTTP client, e.g. imported from a file).
    client_ip: Address | None
    user_agent: str | None

    @classmethod
    def create(
        cls,
        source: SourceBinding,
        fields: Submission,
        client_key: str | None,
        *,
        received_host: str | None,
        received_path: str,
        client_ip: Address | None = None,
        user_agent: str | None = None,
    ) -> NewLead:
        """Normalized with the source's market; keyed by `client_key`, else by the key derived
        from the fields (SPEC §7, §8)."""
        email = normalize_email(fields.contact.get("email"))
        phone = normalize_phone(fields.contact.get("phone"), source.phone_region)
        digest = content_digest(
            fields.contact,
            normalized_email=email,
            normalized_phone=phone,
            is_test=fields.is_test,
            # Consent fields enter it as posted, as every field outside the contact did
            # before they had columns of their own: the same request, the same key.
            attributes={**fields.attributes, **fields.consent_posted},
        )
        key = client_key
        if key is None:
            key = derived_key(digest, normalized_email=email, normalized_phone=phone)
        return cls(
            lead_id=lead_id_for(source.source_id, key),
            source=source,
            idempotency_key=key,
            idempotency_key_origin="derived" if client_key is None else "client",
            is_test=fields.is_test,
            contact=fields.contact,
            normalized_email=email,
            normalized_phone=phone,
            attributes=fields.attributes,
            consent=consent_columns(fields.consent),
            fingerprint=digest,
            received_host=received_host,
            received_path=received_path,
            client_ip=client_ip,
            user_agent=user_agent,
        )
