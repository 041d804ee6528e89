"""Consent evidence as posted and normalized, and the derived key it enters under its posted
names, pinned to the keys the same requests got when these fields were attributes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.consent import normalize_leadid, parse_consent_at, trustedform_cert_id
from domain.errors import InvalidRequest
from domain.fields import FIELDS_BY_NAME
from domain.lead import NewLead
from domain.sources import SourceBinding
from domain.submission import parse_submission

SOURCE = SourceBinding(1, None, 1, 1, 1, "US")
CERT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "A1B2C3D4-E5F6-7890-ABCD-EF1234567890"


def lead(posted: dict[str, object], source: SourceBinding = SOURCE) -> NewLead:
    """The lead as the ingest handler makes it: the source's aliases applied, then created."""
    fields = parse_submission(posted).with_aliases(source.field_aliases)
    return NewLead.create(source, fields, None, received_host=None, received_path="/")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://cert.trustedform.com/{CERT}", CERT),
        (f" HTTPS://CERT.TRUSTEDFORM.COM/{CERT.upper()}/ ", CERT),
        (f"http://cert.trustedform.com/{CERT}", None),  # not https
        (f"https://cert.trustedform.com.evil.example/{CERT}", None),
        (f"https://cert.trustedform.com:8443/{CERT}", None),
        (f"https://cert.trustedform.com/{CERT}?x=1", None),
        ("https://cert.trustedform.com/abc", None),
        ("https://[::1/", None),  # not even a URL
        ("not a url", None),
    ],
)
def test_the_certificate_id_comes_from_a_trustedform_certificate_url_only(
    url: str, expected: str | None
) -> None:
    assert trustedform_cert_id(url) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [(TOKEN, TOKEN), (f"  {TOKEN.lower()} ", TOKEN), ("abc", None), (TOKEN + "0", None)],
)
def test_a_leadid_token_is_normalized_only_when_it_has_the_tokens_shape(
    token: str, expected: str | None
) -> None:
    assert normalize_leadid(token) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T17:05:00Z", datetime(2026, 11, 30, 17, 5, tzinfo=UTC)),
        ("2026-11-30t17:05z", datetime(2026, 11, 30, 17, 5, tzinfo=UTC)),
        (
            "2026-11-30 12:05:00.25-05:00",
            datetime(2026, 11, 30, 12, 5, 0, 250000, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("2026-11-30T17:05:00+0100", datetime(2026, 11, 30, 16, 5, tzinfo=UTC)),
    ],
)
def test_consent_at_is_a_date_and_time_with_its_offset(text: str, expected: datetime) -> None:
    assert parse_consent_at(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-11-30T17:05:00", "2026-11-30", "yesterday", "2026-02-30T10:00Z", "1700000000"]
)
def test_any_other_consent_at_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        lead({"email": "a@example.com", "consent_at": text})
    assert error.value.details == {"reason": "invalid_timestamp", "field": "consent_at"}


def test_every_other_name_of_a_field_is_taken_in_any_case() -> None:
    for field in FIELDS_BY_NAME.values():
        for name in field.also:
            value = f"https://cert.trustedform.com/{CERT}" if "url" in field.name else TOKEN
            submission = parse_submission({name.upper(): value})
            assert submission.consent[field.name] == value
            assert submission.attributes == {}


def test_a_field_under_two_of_its_names_with_different_values_is_refused() -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_submission({"jornaya_leadid": "a", "leadid_token": "b"})
    assert error.value.details == {"reason": "conflicting_values", "field": "jornaya_leadid"}


def test_malformed_evidence_is_stored_as_posted_with_its_normalized_form_absent() -> None:
    new = lead({"email": "a@example.com", "xxTrustedFormCertUrl": "cert-1", "leadid_token": " x "})
    assert new.consent["trustedform_cert_url"] == "cert-1"
    assert new.consent["trustedform_cert_id"] is None
    assert new.consent["jornaya_leadid"] == " x "
    assert new.consent["normalized_jornaya_leadid"] is None


def test_blank_evidence_is_absent() -> None:
    new = lead({"email": "a@example.com", "page_url": "  ", "disclaimer": ""})
    assert new.consent["page_url"] is None and new.consent["tcpa_consent_text"] is None


# Keys these requests derived when the consent names were attributes, as the code then computed
# them: the consent columns must not change the identity of a lead already stored.
PINNED = [
    (
        {
            "email": "Jane@Example.com",
            "phone": "(415) 555-2671",
            "xxTrustedFormCertUrl": f"https://cert.trustedform.com/{CERT}",
            "xxTrustedFormPingUrl": "https://ping.trustedform.com/0.abc",
            "universal_leadid": TOKEN,
            "Disclaimer": "By clicking I agree to be called.",
            "consent_at": "2026-11-30T17:05:00Z",
            "page_url": "https://example.com/quote",
            "utm_source": "x",
        },
        "d1:5da53aca5fbe88201a2414aa2724d0a873144f1de69abb522ff7a8dcba353f0b",
    ),
    (
        {
            "email": "sam@example.com",
            "trustedform_cert_url": "https://cert.trustedform.com/x",
            "jornaya_leadid": " token ",
            "tcpa_consent_text": "ok",
            "leadid_token": " token ",
        },
        "d1:7a453acddefa7e42a729c732b5492c7aaf689069347cd41605f843147a483c2a",
    ),
]


@pytest.mark.parametrize(("posted", "key"), PINNED)
def test_consent_fields_enter_the_derived_key_as_posted(
    posted: dict[str, object], key: str
) -> None:
    assert lead(posted).idempotency_key == key


def test_evidence_that_differs_is_another_lead_and_a_source_alias_reaches_it() -> None:
    first = lead({"email": "a@example.com", "disclaimer": "one"})
    assert lead({"email": "a@example.com", "disclaimer": "two"}).idempotency_key != (
        first.idempotency_key
    )
    aliased = SourceBinding(1, None, 1, 1, 1, "US", field_aliases={"optin": "tcpa_consent_text"})
    new = lead({"email": "a@example.com", "optin": "I agree"}, aliased)
    assert new.consent["tcpa_consent_text"] == "I agree" and new.attributes == {}
    # Under its posted name, as every field outside the contact enters the key.
    assert (
        new.idempotency_key == lead({"email": "a@example.com", "optin": "I agree"}).idempotency_key
    )
    with pytest.raises(InvalidRequest):
        lead({"email": "a@example.com", "optin": "I agree", "disclaimer": "other"}, aliased)
