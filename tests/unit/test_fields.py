"""One field contract: validation, the OpenAPI request schema and the publisher docs are all
derived from the table in domain/fields.py; these tests check each derivation row by row."""

from __future__ import annotations

from typing import Any

import pytest

from cli.catalog_docs import FIELDS as DOCS_FIELDS
from cli.catalog_docs import posting_instructions
from domain.catalog import Market, Offer, Source, SourceDescription, Vertical
from domain.errors import InvalidIdempotencyKeyFormat, InvalidRequest
from domain.fields import (
    CONSENT_FIELDS,
    CONTACT_FIELDS,
    FIELDS_BY_NAME,
    KNOWN_FIELDS,
    MAX_ATTRIBUTES,
    MAX_KEY_LENGTH,
    POSTED_FIELDS,
    PostedField,
)
from domain.idempotency import validate_client_key
from domain.submission import parse_submission
from web.openapi import LEAD_FORM_SCHEMA, LEAD_REQUEST_SCHEMA, _field_schema

LIMITED = [f for f in POSTED_FIELDS if f.limit is not None]
INTEGER_TEXT = [f for f in POSTED_FIELDS if f.type == "text_or_integer"]
PLAIN_TEXT_CONTACT = [f for f in POSTED_FIELDS if f.type == "text" and f.role == "contact"]


def _json_types(schema: dict[str, Any]) -> set[str]:
    types: set[str] = set()
    for part in [schema, *schema.get("oneOf", [])]:
        declared = part.get("type", [])
        types.update([declared] if isinstance(declared, str) else declared)
    return types


def test_the_table() -> None:
    assert tuple(FIELDS_BY_NAME) == KNOWN_FIELDS  # names are unique
    assert all(name.isascii() and name == name.lower() for name in KNOWN_FIELDS)
    assert all(FIELDS_BY_NAME[name].limit is not None for name in CONTACT_FIELDS)
    assert all(FIELDS_BY_NAME[name].limit is not None for name in CONSENT_FIELDS)
    assert {f.name for f in POSTED_FIELDS if f.role == "selector"} == {"source_id", "source_key"}


@pytest.mark.parametrize("field", LIMITED, ids=lambda f: f.name)
def test_validation_enforces_each_limit(field: PostedField) -> None:
    assert field.limit is not None
    at_limit = parse_submission({field.name: "x" * field.limit})
    typed = at_limit.consent if field.role == "consent" else at_limit.contact
    assert typed[field.name] == "x" * field.limit
    with pytest.raises(InvalidRequest) as error:
        parse_submission({field.name: "x" * (field.limit + 1)})
    assert error.value.details == {"reason": "too_long", "field": field.name}


@pytest.mark.parametrize("field", INTEGER_TEXT, ids=lambda f: f.name)
def test_validation_takes_integers_where_the_table_says(field: PostedField) -> None:
    assert parse_submission({field.name: 12345678}).contact[field.name] == "12345678"
    assert field.limit is not None
    with pytest.raises(InvalidRequest):
        parse_submission({field.name: 10**field.limit})


@pytest.mark.parametrize("field", PLAIN_TEXT_CONTACT, ids=lambda f: f.name)
def test_validation_refuses_integers_for_text(field: PostedField) -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_submission({field.name: 7})
    assert error.value.details == {"reason": "wrong_type", "field": field.name}


def test_the_key_limit_is_the_tables() -> None:
    assert validate_client_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH
    with pytest.raises(InvalidIdempotencyKeyFormat):
        validate_client_key("k" * (MAX_KEY_LENGTH + 1))
    assert str(MAX_KEY_LENGTH) in FIELDS_BY_NAME["idempotency_key"].notes


def test_validation_caps_extra_fields_at_the_tables_limit() -> None:
    extras = {f"extra_{i}": i for i in range(MAX_ATTRIBUTES)}
    assert len(parse_submission(extras).attributes) == MAX_ATTRIBUTES
    with pytest.raises(InvalidRequest):
        parse_submission({**extras, "one_more": 1})


def test_openapi_request_schema_is_derived_row_by_row() -> None:
    properties = LEAD_REQUEST_SCHEMA["properties"]
    assert tuple(properties) == KNOWN_FIELDS
    assert tuple(LEAD_FORM_SCHEMA["properties"]) == KNOWN_FIELDS
    assert str(MAX_ATTRIBUTES) in LEAD_REQUEST_SCHEMA["description"]
    for field in POSTED_FIELDS:
        schema = properties[field.name]
        assert schema.get("description", "") == field.description
        lengths = [schema.get("maxLength")] + [s.get("maxLength") for s in schema.get("oneOf", [])]
        assert [n for n in lengths if n is not None] == ([field.limit] if field.limit else [])
        types = _json_types(schema)
        assert "null" in types
        assert ("integer" in types) == (field.type in ("source_id", "text_or_integer", "flag"))


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (PostedField("x", "text", "contact", 7), {"type": ["string", "null"], "maxLength": 7}),
        (
            PostedField("x", "text_or_integer", "contact", 9, "n"),
            {
                "description": "n",
                "oneOf": [
                    {"type": "string", "maxLength": 9},
                    {"type": "integer"},
                    {"type": "null"},
                ],
            },
        ),
        (PostedField("x", "text", "selector"), {"type": ["string", "null"]}),
    ],
)
def test_a_changed_row_changes_the_schema(field: PostedField, expected: dict[str, object]) -> None:
    assert _field_schema(field) == expected


def test_docs_table_is_derived_row_by_row() -> None:
    assert tuple(name for name, _, _ in DOCS_FIELDS) == KNOWN_FIELDS
    for (_, type_text, limit_text), field in zip(DOCS_FIELDS, POSTED_FIELDS, strict=True):
        if field.limit is not None:
            assert f"at most {field.limit} characters" in limit_text
        assert field.description.replace("`", "") in limit_text
        assert ("integer" in type_text) == (field.type in ("source_id", "text_or_integer"))


def test_docs_print_the_table() -> None:
    description = SourceDescription(
        source_id=7,
        source=Source("acme", "Acme", "us-solar", "acme-key"),
        offer=Offer("us-solar", "US solar", "us", "solar"),
        market=Market("us", "United States", "US"),
        vertical=Vertical("solar", "Solar"),
        mappings=(),
    )
    text = posting_instructions(description)
    for name, type_text, limit_text in DOCS_FIELDS:
        assert any(
            line.split()[:1] == [name] and type_text in line and limit_text in line
            for line in text.splitlines()
        ), name
    assert f"(at most {MAX_ATTRIBUTES})" in text
