"""Consent evidence (TrustedForm, Jornaya LeadiD, the consent text, when and where), as stored.

The posted values come typed as text from the field table (domain/fields.py); each is stored
as posted, and three are also stored normalized: the TrustedForm certificate id, the LeadiD
token in upper case, and `consent_at` as a timestamp. A value that is not of the documented
shape is kept as posted with its normalized column NULL; only a `consent_at` that is not a
date and time with an offset is refused, as it cannot be stored as one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

from domain.errors import InvalidRequest

TRUSTEDFORM_CERT_HOST = "cert.trustedform.com"
_CERT_ID = re.compile(r"[0-9a-f]{40}")
_LEADID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
# ISO 8601 / RFC 3339 date and time with an offset: what `datetime.fromisoformat` reads,
# restricted to a full date, a time to at least the minute, and Z or ±hh:mm.
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})"
)


def trustedform_cert_id(url: str | None) -> str | None:
    """The certificate id of a `https://cert.trustedform.com/<40 hex digits>` URL, lower-case;
    None for any other value."""
    if url is None:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or (parts.hostname or "") != TRUSTEDFORM_CERT_HOST:
        return None
    if parts.port is not None or parts.query or parts.fragment:
        return None
    certificate = parts.path.strip("/").lower()
    return certificate if _CERT_ID.fullmatch(certificate) else None


def normalize_leadid(token: str | None) -> str | None:
    """A Jornaya LeadiD token trimmed and upper-cased; None when it is not of the token's shape."""
    if token is None:
        return None
    normalized = token.strip().upper()
    return normalized if _LEADID.fullmatch(normalized) else None


def parse_consent_at(text: str | None) -> datetime | None:
    """The moment `text` names; `invalid_request` (`field`: consent_at) unless it is an ISO 8601
    date and time with its offset."""
    if text is None:
        return None
    value = text.strip()
    if _TIMESTAMP.fullmatch(value):  # which requires an offset
        with contextlib.suppress(ValueError):  # a date or time out of range, e.g. 2026-02-30
            return datetime.fromisoformat(value.replace("z", "Z"))
    raise InvalidRequest(reason="invalid_timestamp", field="consent_at")


def consent_columns(typed: Mapping[str, str | None]) -> dict[str, object]:
    """The lead's consent columns: each posted field as posted, and the normalized ones, from
    the typed consent fields of a submission (blank text counts as absent, as for every field)."""
    posted = {name: value for name, value in typed.items() if value is not None and value.strip()}
    return {
        "trustedform_cert_url": posted.get("trustedform_cert_url"),
        "trustedform_cert_id": trustedform_cert_id(posted.get("trustedform_cert_url")),
        "trustedform_ping_url": posted.get("trustedform_ping_url"),
        "jornaya_leadid": posted.get("jornaya_leadid"),
        "normalized_jornaya_leadid": normalize_leadid(posted.get("jornaya_leadid")),
        "tcpa_consent_text": posted.get("tcpa_consent_text"),
        "consent_at": parse_consent_at(posted.get("consent_at")),
        "page_url": posted.get("page_url"),
    }


CONSENT_COLUMNS: tuple[str, ...] = tuple(consent_columns({}))
