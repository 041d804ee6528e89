"""One result shape: `LeadView` decides the columns read, the HTTP body and its OpenAPI schema."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

import orjson
import pytest

from commands.ingest_lead import LeadIngested
from queries.leads import LEAD_BY_ID, LEAD_VIEW_COLUMNS, LeadView
from web.leads import lead_response
from web.openapi import LEAD_RESPONSE_SCHEMA, RESPONSES, result_schema

LEAD = LeadView(
    lead_id=UUID("6f1c2a52-8f55-5b52-9a38-0d1c1a3f4e11"),
    source_id=7,
    offer_id=3,
    market_id=1,
    vertical_id=2,
    idempotency_key="order-1",
    idempotency_key_origin="client",
    status="received",
)

_PYTHON_TYPE = {"string": str, "integer": int, "boolean": bool}


def _conforms(body: dict[str, Any], schema: dict[str, Any]) -> bool:
    properties = schema["properties"]
    if list(body) != list(properties) or set(schema["required"]) != set(body):
        return False
    for name, value in body.items():
        rule = properties[name]
        if type(value) is not _PYTHON_TYPE[rule["type"]]:
            return False
        if "enum" in rule and value not in rule["enum"]:
            return False
        if rule.get("format") == "uuid" and str(UUID(str(value))) != value:
            return False
    return True


@pytest.mark.parametrize("replayed", [False, True])
def test_http_body_is_rendered_from_the_view(replayed: bool) -> None:
    response = lead_response(LeadIngested(LEAD, replayed=replayed))
    assert response.status_code == (200 if replayed else 201)
    # SPEC §6.1, byte for byte: the view's fields in order, then `replayed`.
    assert response.body == (
        b'{"lead_id":"6f1c2a52-8f55-5b52-9a38-0d1c1a3f4e11","source_id":7,"offer_id":3,'
        b'"market_id":1,"vertical_id":2,"idempotency_key":"order-1",'
        b'"idempotency_key_origin":"client","status":"received","replayed":'
        + (b"true" if replayed else b"false")
        + b"}"
    )
    assert _conforms(orjson.loads(response.body), LEAD_RESPONSE_SCHEMA)


def test_openapi_response_schema_is_derived_from_the_view() -> None:
    assert LEAD_RESPONSE_SCHEMA["required"] == [
        *(field.name for field in dataclasses.fields(LeadView)),
        "replayed",
    ]
    assert LEAD_RESPONSE_SCHEMA["properties"]["lead_id"] == {"type": "string", "format": "uuid"}
    assert LEAD_RESPONSE_SCHEMA["properties"]["idempotency_key_origin"] == {
        "type": "string",
        "enum": ["client", "derived"],
    }
    for status in (200, 201):
        content = RESPONSES[status]["content"]["application/json"]
        assert content["schema"] is LEAD_RESPONSE_SCHEMA


@pytest.mark.parametrize(("status", "replayed"), [(201, False), (200, True)])
def test_openapi_success_examples_are_bodies_the_service_renders(
    status: int, replayed: bool
) -> None:
    example = RESPONSES[status]["content"]["application/json"]["example"]
    assert example["replayed"] is replayed
    view = LeadView.from_row({**example, "lead_id": UUID(example["lead_id"])})
    response = lead_response(LeadIngested(view, replayed=replayed))
    assert (response.status_code, response.body) == (status, orjson.dumps(example))
    assert _conforms(example, LEAD_RESPONSE_SCHEMA)


def test_a_new_view_field_reaches_body_schema_and_columns() -> None:
    """The derivation, not a copy: a field added to a view shows up everywhere at once."""

    @dataclasses.dataclass(frozen=True)
    class Extended:
        lead: LeadView
        priority: int
        replayed: bool

    schema = result_schema(Extended)
    assert list(schema["properties"])[-2:] == ["priority", "replayed"]
    assert schema["properties"]["priority"] == {"type": "integer"}
    body = {**LEAD.as_json(), "priority": 5, "replayed": False}
    assert _conforms(body, schema)
    assert not _conforms({**body, "priority": "5"}, schema)
    assert not _conforms({**LEAD.as_json(), "replayed": False}, schema)


def test_columns_read_are_the_view_fields() -> None:
    assert LEAD_VIEW_COLUMNS.split(", ") == [f.name for f in dataclasses.fields(LeadView)]
    assert f"SELECT {LEAD_VIEW_COLUMNS}, fingerprint FROM leads" in LEAD_BY_ID


def test_view_is_built_from_a_row_by_name() -> None:
    # A row mapping columns by name (as asyncpg's Record does), in a different order.
    row = dict(reversed(list(dataclasses.asdict(LEAD).items())))
    assert LeadView.from_row(row) == LEAD
