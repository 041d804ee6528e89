"""What an erasure matches, and what it does to a lead (the columns are migration 0004's)."""

from __future__ import annotations

from domain.normalization import normalize_email, normalize_phone

# A derived idempotency key is a hash of the person's data: erasure replaces it by this
# prefix and the lead id. A client's key is the publisher's reference, and stays.
ERASED_KEY_PREFIX = "erased:"


class ErasureError(ValueError):
    """A criterion that matches nobody by construction (not an email address, not a number)."""


def erasure_email(email: str) -> str:
    """The email as leads store it normalized (trimmed, lower-cased)."""
    normalized = normalize_email(email)
    if normalized is None or "@" not in normalized:
        raise ErasureError(f"{email!r} is not an email address")
    return normalized


def erasure_phone(phone: str, region: str) -> str:
    """The number as leads store it normalized (E.164, read in `region` unless it is
    international)."""
    normalized = normalize_phone(phone, region)
    if normalized is None:
        raise ErasureError(f"{phone!r} is not a phone number (7 digits or more)")
    return normalized
