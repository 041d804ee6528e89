"""Posted fields (body + query merging) and `IngestLead.from_posted`, without HTTP or a database."""

from __future__ import annotations

import pytest

from commands.ingest_lead import IngestLead
from domain.errors import InvalidRequest, LeadError
from domain.posted import merge_fields, parse_form, parse_json, posted_fields
from domain.submission import CONTACT_FIELDS


def _reason(error: pytest.ExceptionInfo[LeadError]) -> object:
    return error.value.details.get("reason")


@pytest.mark.parametrize(
    ("body", "media_type", "query", "expected"),
    [
        (b'{"email": "a@b.co"}', "application/json", b"", {"email": "a@b.co"}),
        (b'{"email": "a@b.co"}', "application/vnd.lead+json", b"", {"email": "a@b.co"}),
        (
            b"email=a%40b.co&x=",
            "application/x-www-form-urlencoded",
            b"",
            {"email": "a@b.co", "x": ""},
        ),
        (b"", "", b"source_id=7", {"source_id": "7"}),
        (b"  ", "text/plain", b"", {}),
        # The same value posted in the body and the query string is one field.
        (b'{"source_id": 7}', "application/json", b"source_id=7", {"source_id": 7}),
        (b"a=1&a=1", "application/x-www-form-urlencoded", b"a=1", {"a": "1"}),
    ],
)
def test_posted_fields(
    body: bytes, media_type: str, query: bytes, expected: dict[str, object]
) -> None:
    assert posted_fields(body, media_type, query) == expected


@pytest.mark.parametrize(
    ("body", "media_type", "query", "reason"),
    [
        (b'{"a": 1}', "application/json", b"a=2", "conflicting_values"),
        (b'{"a": 1, "a": 2}', "application/json", b"", "conflicting_values"),
        (b'{"a": true}', "application/json", b"a=1", "conflicting_values"),
        (b"a=1&a=2", "application/x-www-form-urlencoded", b"", "conflicting_values"),
        (b"[1]", "application/json", b"", "not_an_object"),
        (b"{", "application/json", b"", "malformed_json"),
        (b'{"a": NaN}', "application/json", b"", "malformed_json"),
        (b"\xff", "application/json", b"", "malformed_json"),
        (b"[" * 100_000, "application/json", b"", "too_deep"),
        (b"a=%ff", "application/x-www-form-urlencoded", b"", "malformed_form"),
        (b"", "", b"a=%ff", "malformed_form"),
        (b"email=x", "text/plain", b"", "unsupported_content_type"),
    ],
)
def test_posted_fields_refused(body: bytes, media_type: str, query: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        posted_fields(body, media_type, query)
    assert _reason(error) == reason


def test_parse_json_takes_text_too() -> None:
    assert parse_json('{"Email": "a@b.co", "n": [1, {"x": null}]}') == {
        "Email": "a@b.co",
        "n": [1, {"x": None}],
    }


def test_merge_names_the_conflicting_field() -> None:
    with pytest.raises(InvalidRequest) as error:
        merge_fields({"email": "a@b.co"}, [("email", "c@d.co")])
    assert error.value.details == {"reason": "conflicting_values", "field": "email"}
    assert parse_form(b"b=2&a=1") == [("b", "2"), ("a", "1")]


def test_from_posted_a_csv_row() -> None:
    """A row of strings, as a CSV reader gives it: blank is absent, names fold, extras stay."""
    row = {
        "Source_ID": "7",
        "source_key": "",
        "idempotency_key": " order-1 ",
        "EMAIL": "Jane@Example.com",
        "phone": "",
        "is_test": "1",
        "campaign": "spring",
    }
    command = IngestLead.from_posted(row, (), None, "/import")
    assert command.source_id == 7
    assert command.source_key == ""
    assert command.client_idempotency_key == "order-1"
    assert command.fields.contact == {
        **dict.fromkeys(CONTACT_FIELDS),
        "email": "Jane@Example.com",
        "phone": "",
    }
    assert command.fields.is_test is True
    assert command.fields.attributes == {"campaign": "spring"}
    assert (command.host, command.path) == (None, "/import")


def test_from_posted_http_fields_and_header() -> None:
    fields = posted_fields(b'{"email": "a@b.co", "source_key": "Acme"}', "application/json")
    command = IngestLead.from_posted(fields, ['"key-1"'], "leads.example", "/api/leads/x")
    assert command.client_idempotency_key == "key-1"
    assert command.source_id is None
    assert command.source_key == "Acme"
    assert (command.host, command.path) == ("leads.example", "/api/leads/x")


@pytest.mark.parametrize(
    ("fields", "header", "code", "reason"),
    [
        ({"email": 5}, [], "invalid_request", "wrong_type"),
        ({"source_id": "seven"}, [], "invalid_source", "malformed"),
        ({}, ["a", "b"], "invalid_idempotency_key_format", "multiple_headers"),
        ({"idempotency_key": "a"}, ["b"], "invalid_idempotency_key_format", "header_body_mismatch"),
        # The body is checked first: a bad field wins over a bad header.
        ({"email": 5}, ["a", "b"], "invalid_request", "wrong_type"),
    ],
)
def test_from_posted_refused(
    fields: dict[str, object], header: list[str], code: str, reason: str
) -> None:
    with pytest.raises(LeadError) as error:
        IngestLead.from_posted(fields, header, None, "/")
    assert (error.value.code, _reason(error)) == (code, reason)
