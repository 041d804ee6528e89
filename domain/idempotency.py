"""Idempotency-key rules (SPEC §6, §8): client keys, the derived key and the lead id.

The lead id is a pure function of (source_id, idempotency_key), so every concurrent copy of
one request computes the same id before touching the database.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence

from domain.classification import is_absent
from domain.errors import IdempotencyDerivationFailed, InvalidIdempotencyKeyFormat
from domain.fields import CONTACT_FIELDS, MAX_KEY_LENGTH

LEAD_ID_NAMESPACE = uuid.UUID("475b17ed-23d3-5374-9bae-ea431261849e")
DERIVED_KEY_PREFIX = "d1:"
# Contact fields that enter the derived key as posted (trimmed); email and phone enter
# in their normalized form instead.
_TRIMMED_CONTACT_FIELDS = tuple(f for f in CONTACT_FIELDS if f not in ("email", "phone"))
_SF_STRING = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\])*)"')
_SF_ESCAPE = re.compile(r'\\(["\\])')


def validate_client_key(value: str) -> str:
    """The trimmed client key, 1..255 printable ASCII characters (0x21..0x7E)."""
    key = value.strip()
    if not key:
        raise InvalidIdempotencyKeyFormat(reason="empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKeyFormat(reason="too_long")
    if not all("!" <= c <= "~" for c in key):
        raise InvalidIdempotencyKeyFormat(reason="invalid_characters")
    return key


def parse_idempotency_header(values: Sequence[str]) -> str | None:
    """The validated key from the `Idempotency-Key` header values; None without the header."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidIdempotencyKeyFormat(reason="multiple_headers")
    key = values[0].strip()
    if key.startswith('"'):
        # An RFC 8941 §4.2.5 sf-string, which must span the whole value.
        if (match := _SF_STRING.fullmatch(key)) is None:
            raise InvalidIdempotencyKeyFormat(reason="malformed_header")
        key = _SF_ESCAPE.sub(r"\1", match[1])
    return validate_client_key(key)


def reconcile_client_key(header_key: str | None, field_key: object) -> str | None:
    """The one client key of a request, from the header and/or the `idempotency_key` field."""
    header = header_key.strip() if header_key is not None else None
    field: str | None = None
    if not is_absent(field_key):
        if not isinstance(field_key, str):
            raise InvalidIdempotencyKeyFormat(reason="not_a_string")
        field = validate_client_key(field_key)
    if header is not None and field is not None and header != field:
        raise InvalidIdempotencyKeyFormat(reason="header_body_mismatch")
    return header if header is not None else field


def content_digest(
    fields: Mapping[str, str | None],
    *,
    normalized_email: str | None,
    normalized_phone: str | None,
    is_test: bool,
    attributes: Mapping[str, object],
) -> str:
    """SHA-256 (hex) of the canonical JSON of the lead's content (SPEC §8): the derived key,
    and every lead's fingerprint. Formatting the same email or phone otherwise, or trimming a
    field, changes nothing; any other difference does."""
    content: dict[str, object] = {"is_test": bool(is_test), "attributes": dict(attributes)}
    if normalized_email:
        content["email"] = normalized_email
    if normalized_phone:
        content["phone"] = normalized_phone
    for name in _TRIMMED_CONTACT_FIELDS:
        value = fields.get(name)
        if value is not None and (trimmed := value.strip()):
            content[name] = trimmed
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def derived_key(digest: str, *, normalized_email: str | None, normalized_phone: str | None) -> str:
    """`d1:` + the content digest, for a lead that names an email or a phone number."""
    # Falsy, not just None: an empty normalized value identifies nobody either.
    if not normalized_email and not normalized_phone:
        raise IdempotencyDerivationFailed(required_any_of=["email", "phone"])
    return DERIVED_KEY_PREFIX + digest


def lead_id_for(source_id: int, idempotency_key: str) -> uuid.UUID:
    """The deterministic lead id of (source, key): replays and concurrent copies agree on it."""
    return uuid.uuid5(LEAD_ID_NAMESPACE, f"{source_id}:{idempotency_key}")
