"""The OpenAPI description of `POST /api/leads`: the real contract, its body types, every
error, each answer in JSON, XML and plain text (by `Accept`, else the source's reply format).

The route reads the body itself (bounded, JSON or form), so the schema is not inferred from
a Pydantic parameter: the request schema is derived from the field table (domain/fields.py),
the response schema from the result dataclasses (`LeadIngested`, `LeadView`) and the error
responses from the table of error codes (`ErrorCode`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints
from uuid import UUID

from commands.ingest_lead import LeadIngested
from domain.errors import ErrorCode
from domain.fields import MAX_ATTRIBUTES, POSTED_FIELDS, PostedField
from domain.idempotency import lead_id_for
from domain.lead import LeadView
from domain.replies import SERVED, ReplyFormat, render
from web.errors import ERROR_ID_HEADER

# What Python's str.strip() removes, so that the schema accepts exactly what the server does.
_SPACE = (
    r"[\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)
_IS_TEST_TEXT = rf"^{_SPACE}*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[01])?{_SPACE}*$"


def _field_schema(field: PostedField) -> dict[str, Any]:
    """The JSON Schema of one row of the field table (domain/fields.py)."""
    schema: dict[str, Any] = {"description": field.description} if field.description else {}
    if field.type == "source_id":
        schema["oneOf"] = [{"type": "integer"}, {"type": "string"}, {"type": "null"}]
    elif field.type == "text":
        schema["type"] = ["string", "null"]
        if field.limit is not None:
            schema["maxLength"] = field.limit
    elif field.type == "text_or_integer":
        text = {"type": "string", **({} if field.limit is None else {"maxLength": field.limit})}
        schema["oneOf"] = [text, {"type": "integer"}, {"type": "null"}]
    else:  # flag
        schema["oneOf"] = [
            {"type": "boolean"},
            {"type": "integer", "enum": [0, 1]},
            {"type": "string", "pattern": _IS_TEST_TEXT},
            {"type": "null"},
        ]
    return schema


_LEAD_FIELDS: dict[str, Any] = {field.name: _field_schema(field) for field in POSTED_FIELDS}
LEAD_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A lead. Any other top-level field is stored as posted in `attributes` "
    f"(at most {MAX_ATTRIBUTES}).",
    "properties": _LEAD_FIELDS,
    "additionalProperties": True,
}
LEAD_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in _LEAD_FIELDS},
    "additionalProperties": {"type": "string"},
}
# JSON Schema of the Python types a result dataclass holds.
_JSON_TYPES: dict[object, dict[str, Any]] = {
    UUID: {"type": "string", "format": "uuid"},
    int: {"type": "integer"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
}


def _properties(result_type: type[Any]) -> dict[str, Any]:
    """The JSON members of a result dataclass; a dataclass member is inlined, as `as_json`
    renders it (`LeadIngested` = the `LeadView` fields, then `replayed`)."""
    hints = get_type_hints(result_type)
    properties: dict[str, Any] = {}
    for field in fields(result_type):
        if field.metadata.get("body") is False:
            continue
        annotation = hints[field.name]
        if isinstance(annotation, type) and is_dataclass(annotation):
            properties.update(_properties(annotation))
        elif get_origin(annotation) is Literal:
            properties[field.name] = {"type": "string", "enum": list(get_args(annotation))}
        else:
            properties[field.name] = dict(_JSON_TYPES[annotation])
    return properties


def result_schema(result_type: type[Any]) -> dict[str, Any]:
    properties = _properties(result_type)
    return {"type": "object", "required": list(properties), "properties": properties}


LEAD_RESPONSE_SCHEMA = result_schema(LeadIngested)

# A lead for source `acme-solar-us` of examples/catalog.yaml, which a database loaded with
# that file (as `leads serve` loads an empty one) holds as source 1 of offer, market and
# vertical 1: "Try it out" creates it (201), and again replays it (200).
EXAMPLE_LEAD: dict[str, str] = {
    "source_key": "acme-solar-us",
    "idempotency_key": "order-10001",
    "email": "jane.doe@example.com",
    "phone": "+1 201-555-0123",
    "first_name": "Jane",
    "last_name": "Doe",
    "campaign": "spring-promo",
}
_EXAMPLE_VIEW = LeadView(
    lead_id=lead_id_for(1, EXAMPLE_LEAD["idempotency_key"]),
    source_id=1,
    offer_id=1,
    market_id=1,
    vertical_id=1,
    idempotency_key=EXAMPLE_LEAD["idempotency_key"],
    idempotency_key_origin="client",
    status="received",
)


def _error_schema(codes: Sequence[ErrorCode]) -> dict[str, Any]:
    # client_not_allowed never tells a client which networks a source accepts.
    empty = all(code is ErrorCode.CLIENT_NOT_ALLOWED for code in codes)
    details = {"type": "object", "maxProperties": 0} if empty else {"type": "object"}
    error = {
        "type": "object",
        "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "string", "enum": [code.value for code in codes]},
            "message": {"type": "string"},
            "details": details,
        },
    }
    return {"type": "object", "required": ["error"], "properties": {"error": error}}


def _answer(
    schema: dict[str, Any], description: str, root: str, example: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A response in each served media type (domain/replies.py): JSON, XML (the document's
    members as elements under `root`) and plain text."""
    # The error envelope's XML is its one member's element.
    xml_schema = schema["properties"][root] if schema.get("required") == [root] else schema
    schemas = {
        ReplyFormat.JSON: schema,
        ReplyFormat.XML: {**xml_schema, "xml": {"name": root}},
        ReplyFormat.TEXT: {
            "type": "string",
            "description": "One `name=value` line per value, names joined with `.` "
            "(domain/replies.py).",
        },
    }
    content: dict[str, Any] = {}
    for media, reply_format in SERVED.items():
        content[media] = {"schema": schemas[reply_format]}
        if example is not None:
            json = reply_format is ReplyFormat.JSON
            content[media]["example"] = example if json else render(media, example, root).decode()
    return {"description": description, "content": content}


_STRING = {"schema": {"type": "string"}}
_ERROR_HEADERS: dict[ErrorCode, dict[str, Any]] = {
    ErrorCode.SERVICE_UNAVAILABLE: {"Retry-After": _STRING},
    ErrorCode.INTERNAL_ERROR: {ERROR_ID_HEADER: _STRING},
}
# Answers to requests that reach no operation (no such route, or not its method).
_NOT_AN_OPERATION = frozenset({ErrorCode.NOT_FOUND, ErrorCode.METHOD_NOT_ALLOWED})


def error_responses(codes: Iterable[ErrorCode]) -> dict[int, dict[str, Any]]:
    """One response per HTTP status of `codes`, listing its codes and what each means."""
    by_status: dict[int, list[ErrorCode]] = {}
    for code in codes:
        by_status.setdefault(code.status, []).append(code)
    responses: dict[int, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        description = "\n".join(f"- `{code}`: {code.explained}" for code in group)
        response = _answer(_error_schema(group), description, "error")
        headers = {name: h for code in group for name, h in _ERROR_HEADERS.get(code, {}).items()}
        if headers:
            response["headers"] = headers
        responses[status] = response
    return responses


def _lead_answer(description: str, replayed: bool) -> dict[str, Any]:
    example = LeadIngested(_EXAMPLE_VIEW, replayed=replayed).as_json()
    return _answer(LEAD_RESPONSE_SCHEMA, description, "lead", example)


RESPONSES: dict[int, dict[str, Any]] = {
    201: _lead_answer("A new lead was created.", replayed=False),
    200: {
        **_lead_answer("Replay: the lead already existed; its current state.", replayed=True),
        "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
    },
    **error_responses(code for code in ErrorCode if code not in _NOT_AN_OPERATION),
}

_REQUEST_BODY: dict[str, Any] = {
    "required": False,
    "content": {
        "application/json": {"schema": LEAD_REQUEST_SCHEMA, "example": EXAMPLE_LEAD},
        "application/x-www-form-urlencoded": {"schema": LEAD_FORM_SCHEMA, "example": EXAMPLE_LEAD},
        # Also `text/xml`, and a form field `xml` holding the document.
        "application/xml": {
            "schema": {**LEAD_FORM_SCHEMA, "xml": {"name": "lead"}},
            "example": "<lead>"
            + "".join(f"<{name}>{value}</{name}>" for name, value in EXAMPLE_LEAD.items())
            + "</lead>",
        },
    },
}
_IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Bare token or RFC 8941 quoted string; must equal the body field if both.",
}


_NEGOTIATION = (
    "Every answer, success or error, is in the media type the `Accept` header prefers "
    "(q-values) among `application/json`, `application/xml`, `text/xml` and `text/plain`. "
    "Without `Accept`, or with `*/*`, it is in the source's `reply_format` (JSON by default, "
    "and always before the source is known); an `Accept` naming none of them gets JSON."
)


def _ingest_operation(summary: str, operation_id: str, *extra_parameters: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": _NEGOTIATION,
        "operationId": operation_id,
        "parameters": [_IDEMPOTENCY_HEADER, *extra_parameters],
        "requestBody": _REQUEST_BODY,
        "responses": {str(status): response for status, response in RESPONSES.items()},
    }


# The ingest routes are plain Starlette routes (no FastAPI parameter handling on the hot
# path), so their operations are declared here and added to the generated schema.
INGEST_PATHS: dict[str, Any] = {
    "/api/leads": {"post": _ingest_operation("Ingest a lead", "ingest_lead")},
    "/api/leads/{subpath}": {
        "post": _ingest_operation(
            "Ingest a lead on a per-source posting URL",
            "ingest_lead_on_posting_url",
            {
                "name": "subpath",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "example": "acme",
                "description": "Only matters to HTTP mapping of posting URLs.",
            },
        )
    },
}
