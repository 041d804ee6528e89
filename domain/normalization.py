"""Normalized contact values stored for the later duplicate-detection stage (SPEC §7).

Only representation is normalized here; deciding whether two leads are the same person
belongs to that later stage.
"""

from __future__ import annotations

import unicodedata

import phonenumbers

MIN_PHONE_DIGITS = 7
_ASCII_DIGITS = frozenset("0123456789")


def normalize_email(email: str | None) -> str | None:
    """Trimmed, lower-cased email; no dot or plus-tag folding (that is a duplicate decision)."""
    if email is None:
        return None
    normalized = email.strip().lower()
    return normalized or None


def normalize_phone(phone: str | None, region: str | None) -> str | None:
    """E.164 when `phonenumbers` finds a possible number, else the ASCII digits; None if < 7."""
    if phone is None:
        return None
    text = unicodedata.normalize("NFKC", phone).strip()
    if not text:
        return None
    normalized = _e164(text, region) or "".join(c for c in text if c in _ASCII_DIGITS)
    digit_count = sum(1 for c in normalized if c in _ASCII_DIGITS)
    return normalized if digit_count >= MIN_PHONE_DIGITS else None


def _e164(text: str, region: str | None) -> str | None:
    # phonenumbers only knows upper-case region codes; the catalog stores them upper-case,
    # upper() only keeps a hand-written lower-case region from silently disabling parsing.
    default_region = region.strip().upper() if region else None
    try:
        number = phonenumbers.parse(text, default_region or None)
    except phonenumbers.NumberParseException:
        return None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    # E.164 has no place for an extension, so it is dropped here.
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
