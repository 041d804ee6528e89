"""Normalized email and phone (SPEC §7)."""

from __future__ import annotations

import pytest

from domain.normalization import normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("ann@example.com", "ann@example.com"),
        ("  Ann@Example.COM\t", "ann@example.com"),
        ("ann.smith+tag@gmail.com", "ann.smith+tag@gmail.com"),  # no dot or tag folding
        ("A.N.N@GMAIL.COM", "a.n.n@gmail.com"),
        ("\u00a0ann@example.com\u00a0", "ann@example.com"),
        ("ÜSER@bücher.example", "üser@bücher.example"),
        ("not an email", "not an email"),  # validation is a later stage's decision
    ],
)
def test_normalize_email(email: str | None, expected: str | None) -> None:
    assert normalize_email(email) == expected


@pytest.mark.parametrize(
    ("phone", "region", "expected"),
    [
        # Formatting symbols vs E.164.
        ("+14155552671", "US", "+14155552671"),
        ("+1 (415) 555-2671", "US", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("415-555-2671", "US", "+14155552671"),
        ("1 415 555 2671", "US", "+14155552671"),
        ("  +1 415 555 2671  ", "US", "+14155552671"),
        # Full-width digits (NFKC) and Arabic-Indic digits (phonenumbers).
        ("\uff14\uff11\uff15\uff15\uff15\uff15\uff12\uff16\uff17\uff11", "US", "+14155552671"),
        ("\u0664\u0661\u0665\u0665\u0665\u0665\u0662\u0666\u0667\u0661", "US", "+14155552671"),
        # Extensions are dropped.
        ("+1 415 555 2671 ext. 12", "US", "+14155552671"),
        ("415-555-2671 x99", "US", "+14155552671"),
        ("+1 415 555 2671;ext=7", None, "+14155552671"),
        # Vanity letters.
        ("1-800-FLOWERS", "US", "+18003569377"),
        ("1 (800) FLOWERS", "us", "+18003569377"),
        ("1-800-FLOWERS", None, None),  # no region: letters dropped, 5 digits left
        # A leading + wins over the region.
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "US", "02079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        # Region None: only + numbers parse, the rest keeps its ASCII digits.
        ("4155552671", None, "4155552671"),
        ("(415) 555-2671", None, "4155552671"),
        ("+14155552671", None, "+14155552671"),
        # A lower-case region still works.
        ("415 555 2671", "us", "+14155552671"),
        ("030 1234567", "DE", "+49301234567"),
        # 6 vs 7 digits.
        ("123456", "US", None),
        ("123-456", None, None),
        ("1234567", None, "1234567"),
        ("555-1234", "US", "5551234"),  # possible only locally: not E.164
        ("+1 555", None, None),
        # Not a possible number: digits only.
        ("+1 415 555 2671 0000", None, "141555526710000"),
        ("+0 1234567", "DE", "01234567"),
        ("call me: 12 34 56 78 90 12 34 56", "US", "1234567890123456"),
        # Nothing there.
        (None, "US", None),
        ("", "US", None),
        ("   ", "US", None),
        ("n/a", "US", None),
        ("abcdefgh", None, None),
    ],
)
def test_normalize_phone(phone: str | None, region: str | None, expected: str | None) -> None:
    assert normalize_phone(phone, region) == expected


def test_normalize_phone_too_long_for_the_parser_keeps_digits() -> None:
    # phonenumbers refuses inputs over 250 characters; the digit fallback still applies.
    assert normalize_phone("1" * 300, "US") == "1" * 300


@pytest.mark.parametrize(
    ("phone", "region", "first", "second"),
    [
        # The digits-only fallback can be a possible national number on a second pass.
        ("+0 1234567", "DE", "01234567", "+491234567"),
        # phonenumbers keeps leading zeros of an all-zero national number inconsistently.
        ("0000000", "AU", "+61000000", "+6100000"),
        # A second national prefix after the country code is stripped one pass at a time.
        ("+4900201000", None, "+490201000", "+49201000"),
    ],
)
def test_normalize_phone_spec_fixed_points(
    phone: str, region: str | None, first: str, second: str
) -> None:
    # Pinned on purpose: SPEC §7 defines the value from the raw phone, once. Only junk input
    # behaves like this; real numbers are fixed points (see test_properties.py).
    assert normalize_phone(phone, region) == first
    assert normalize_phone(first, region) == second
