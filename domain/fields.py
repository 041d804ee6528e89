"""The posted-field contract (SPEC §6) as one table.

Validation (domain/submission.py, domain/idempotency.py), the OpenAPI request schema
(web/openapi.py) and the publisher instructions (`leads catalog docs`) are derived from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# What a field accepts:
#   source_id        a JSON integer or a string of ASCII digits
#   text             a string
#   text_or_integer  a string, or a JSON integer (stored as its decimal string)
#   flag             a JSON boolean, 0/1, or the strings true/false/1/0 (any case, trimmed)
# Every field also accepts null, and blank text counts as absent.
FieldType = Literal["source_id", "text", "text_or_integer", "flag"]
# What a field is for: choosing the source, the client's idempotency key, the contact
# (stored raw and normalized), the test marker, or evidence of the consumer's consent (stored
# in columns of its own, domain/consent.py).
FieldRole = Literal["selector", "key", "contact", "flag", "consent"]

MAX_KEY_LENGTH = 255
MAX_ATTRIBUTES = 100
MAX_URL_LENGTH = 2048
MAX_CONSENT_TEXT_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class PostedField:
    """One known field. `limit` is the most characters a posted value may have (None: no
    length rule of its own); `notes` is what a publisher needs to know beyond type and limit;
    `also` are other names publishers post it under (matched like its own name)."""

    name: str
    type: FieldType
    role: FieldRole
    limit: int | None = None
    notes: str = ""
    also: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        """The notes, and the other names it is accepted under (publisher docs, OpenAPI)."""
        names = ", ".join(f"`{name}`" for name in self.also)
        also = f"also accepted as {names}" if names else ""
        return "; ".join(part for part in (self.notes, also) if part)


POSTED_FIELDS: tuple[PostedField, ...] = (
    PostedField("source_id", "source_id", "selector", notes="selects the source (first priority)"),
    PostedField("source_key", "text", "selector", notes="selects the source (second priority)"),
    PostedField(
        "idempotency_key",
        "text",
        "key",
        notes=f"1-{MAX_KEY_LENGTH} printable ASCII characters, trimmed; else one is derived",
    ),
    PostedField("email", "text", "contact", 320),
    PostedField("phone", "text_or_integer", "contact", 64),
    PostedField("first_name", "text", "contact", 200),
    PostedField("last_name", "text", "contact", 200),
    PostedField("address", "text", "contact", 200),
    PostedField("city", "text", "contact", 200),
    PostedField("region", "text", "contact", 200),
    PostedField("postal_code", "text_or_integer", "contact", 200),
    PostedField("country", "text", "contact", 200),
    PostedField(
        "is_test",
        "flag",
        "flag",
        notes="marks a test lead (text in any case, trimmed; blank is false)",
    ),
    PostedField(
        "trustedform_cert_url",
        "text",
        "consent",
        MAX_URL_LENGTH,
        "stored as posted; a `https://cert.trustedform.com/<id>` URL also gives the certificate id",
        also=("xxTrustedFormCertUrl",),
    ),
    PostedField(
        "trustedform_ping_url",
        "text",
        "consent",
        MAX_URL_LENGTH,
        "stored as posted",
        also=("xxTrustedFormPingUrl",),
    ),
    PostedField(
        "jornaya_leadid",
        "text",
        "consent",
        100,
        "the Jornaya LeadiD token; stored as posted, and upper-cased when it has the token's "
        "shape (8-4-4-4-12 hexadecimal digits)",
        also=("universal_leadid", "leadid_token"),
    ),
    PostedField(
        "tcpa_consent_text",
        "text",
        "consent",
        MAX_CONSENT_TEXT_LENGTH,
        "the consent language the consumer agreed to, as shown",
        also=("disclaimer",),
    ),
    PostedField(
        "consent_at",
        "text",
        "consent",
        64,
        "when the consumer consented: ISO 8601 date and time with its offset "
        "(`2026-11-30T17:05:00Z`, `2026-11-30T12:05:00-05:00`); anything else is refused",
    ),
    PostedField("page_url", "text", "consent", MAX_URL_LENGTH, "the page the lead was captured on"),
)

FIELDS_BY_NAME: Mapping[str, PostedField] = {field.name: field for field in POSTED_FIELDS}
KNOWN_FIELDS: tuple[str, ...] = tuple(field.name for field in POSTED_FIELDS)
CONTACT_FIELDS: tuple[str, ...] = tuple(f.name for f in POSTED_FIELDS if f.role == "contact")
CONSENT_FIELDS: tuple[str, ...] = tuple(f.name for f in POSTED_FIELDS if f.role == "consent")
# What selects the source or names the lead: never a per-source alias's target.
SELECTOR_FIELDS: tuple[str, ...] = tuple(
    f.name for f in POSTED_FIELDS if f.role in ("selector", "key")
)
# What a source's field alias may rename a publisher's name to.
ALIAS_TARGETS: tuple[str, ...] = tuple(
    f.name for f in POSTED_FIELDS if f.role in ("contact", "flag", "consent")
)


def fold_field_name(name: str) -> str:
    """A posted name as known names are matched: ASCII letters lower-cased, nothing else (so
    e.g. KELVIN SIGN never turns a name into `source_key`)."""
    if name.isascii():
        return name.lower()
    return "".join(c.lower() if c.isascii() else c for c in name)


def same_value(first: object, second: object) -> bool:
    """Equal as JSON values: `1 == True == 1.0` in Python, three different values in JSON."""
    return type(first) is type(second) and first == second


# Every name a known field is posted under, folded (fold_field_name) → the field's name.
KNOWN_NAMES: Mapping[str, str] = {
    fold_field_name(name): field.name
    for field in POSTED_FIELDS
    for name in (field.name, *field.also)
}
