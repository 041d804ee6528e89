"""The errors a client can be told about: `ErrorCode` is their one table (code, HTTP status,
meaning, the reasons `details.reason` takes); the typed errors below carry a code from it.

The HTTP answers (web/errors.py), the OpenAPI responses (web/openapi.py), the publisher
instructions (`leads catalog docs`) and the README's errors table are all derived from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Self

from domain.fields import MAX_ATTRIBUTES, MAX_KEY_LENGTH
from domain.replies import ReplyFormat


class ErrorCode(StrEnum):
    """A code of the API contract, with what the contract says about it."""

    status: int
    meaning: str
    reasons: Mapping[str, str]

    def __new__(
        cls, code: str, status: int, meaning: str, reasons: Mapping[str, str] | None = None
    ) -> Self:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.meaning = meaning
        member.reasons = MappingProxyType(dict(reasons or {}))
        return member

    @property
    def explained(self) -> str:
        """The meaning, then each reason with its own (Markdown)."""
        if not self.reasons:
            return self.meaning
        listed = ", ".join(f"`{reason}` ({why})" for reason, why in self.reasons.items())
        return f"{self.meaning}; `details.reason`: {listed}"

    INVALID_REQUEST = (
        "invalid_request",
        400,
        "the body, a field, the path, the `Host` header or the HTTP request itself is not "
        "valid (`details.field` names the field)",
        {
            "malformed_json": "the body is not JSON",
            "not_an_object": "the JSON body is not an object",
            "malformed_form": "the form is not UTF-8 URL encoding",
            "unsupported_content_type": "neither JSON, a form nor XML",
            "malformed_xml": "the XML body (or `xml` form field) is not well-formed, or not in "
            "its declared encoding",
            "forbidden_xml": "XML with a DTD, entities or external references",
            "body_too_large": "the body is over `details.limit` bytes",
            "too_deep": "JSON or XML nested too deeply",
            "number_too_long": "a JSON number over `details.limit` characters",
            "invalid_number": "a JSON number out of range",
            "wrong_type": "a field of the wrong type",
            "too_long": "a field over its length limit",
            "invalid_characters": "U+0000 or an unpaired surrogate in a string",
            "invalid_timestamp": "`consent_at` is not an ISO 8601 date and time with its offset",
            "too_many_fields": f"over {MAX_ATTRIBUTES} fields for `attributes`, or an XML "
            "document of over 1000 elements",
            "conflicting_values": "a field given twice with different values: in the body and "
            "the query string, or as a source's field alias and as the field",
            "control_characters": "control characters in the path",
            "dot_segments": "`.` or `..` segments in the path",
            "encoded_slash": "`%2F` in the path",
            "duplicate_host": "two `Host` headers",
            "invalid_port": "an impossible port in `Host`",
            "malformed_http": "the HTTP server's parser refused the request",
        },
    )
    INVALID_SOURCE = (
        "invalid_source",
        400,
        "`source_id` does not name an active source",
        {
            "malformed": "not a source id",
            "not_found": "no such source, or it or its offer is inactive",
        },
    )
    INVALID_SOURCE_KEY = (
        "invalid_source_key",
        400,
        "`source_key` does not name an active source, or the source requires it and none was sent",
        {
            "malformed": "not a source key",
            "not_found": "no active source has this key",
            "conflicts_with_source_id": "the key is not the key of the source `source_id` names",
            "required": "the source requires its key and none was sent",
        },
    )
    CLIENT_NOT_ALLOWED = (
        "client_not_allowed",
        403,
        "the source takes leads only from its allowed networks, and the client address is "
        "outside them (`details` is empty: the networks are never listed)",
    )
    UNMAPPED_SOURCE = (
        "unmapped_source",
        400,
        "no `source_id` or `source_key`, and no active mapping holds the host and path",
        {"invalid_host": "the `Host` header is not a host name"},
    )
    AMBIGUOUS_SOURCE_MAPPING = (
        "ambiguous_source_mapping",
        409,
        "the longest prefix matching the host and path is held by several sources "
        "(`details.source_ids`, ascending)",
    )
    INVALID_IDEMPOTENCY_KEY_FORMAT = (
        "invalid_idempotency_key_format",
        400,
        f"the idempotency key is not 1 to {MAX_KEY_LENGTH} printable ASCII characters, or "
        "header and field disagree",
        {
            "empty": "blank",
            "too_long": f"over {MAX_KEY_LENGTH} characters",
            "invalid_characters": "a character that is not printable ASCII",
            "not_a_string": "the field is not a string",
            "multiple_headers": "more than one `Idempotency-Key` header",
            "malformed_header": "the header is neither a token nor a quoted string",
            "header_body_mismatch": "header and field differ",
        },
    )
    IDEMPOTENCY_DERIVATION_FAILED = (
        "idempotency_derivation_failed",
        400,
        "no idempotency key was sent, and no email or phone to derive one from "
        "(`details.required_any_of`)",
    )
    NOT_FOUND = "not_found", 404, "no such route (`details.path`)"
    METHOD_NOT_ALLOWED = (
        "method_not_allowed",
        405,
        "the route does not take this method, e.g. `GET /api/leads`; leads are posted with "
        "POST (`details.allowed`, and the `Allow` header)",
    )
    REQUEST_TIMEOUT = (
        "request_timeout",
        408,
        "the request did not arrive in time; send it again with the same idempotency key",
    )
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        422,
        "the source refuses a reused idempotency key (`key_reuse: reject`), and this one was "
        "used for a lead with other content; nothing is stored (`details` is empty)",
    )
    REQUEST_HEADER_TOO_LARGE = (
        "request_header_too_large",
        431,
        "the request line and header fields are over the server's limit, a long URL included "
        "(`details.limit`, in bytes)",
    )
    SERVICE_UNAVAILABLE = (
        "service_unavailable",
        503,
        "temporary: the database is unreachable, too slow, out of connections or "
        "misconfigured, or the server is at its concurrency limit; retry after `Retry-After` "
        "seconds with the same idempotency key",
        {
            "concurrency_limit": "the server is past `--limit-concurrency`",
            "unreachable": "`/readyz`: no PostgreSQL answers",
            "unavailable": "`/readyz`: the database is busy or too slow",
            "authentication_failed": "`/readyz`: PostgreSQL refused the user name or password",
            "database_missing": "`/readyz`: the database does not exist",
            "schema_not_migrated": "`/readyz`: the schema is not migrated",
            "schema_out_of_date": "`/readyz`: the schema is older than the service",
        },
    )
    INTERNAL_ERROR = (
        "internal_error",
        500,
        "unexpected: retry with the same idempotency key; the `X-Error-Id` header names the "
        "log entry with the stack trace",
    )


class LeadError(Exception):
    """Base of every error a client can be told about; `code` is part of the API contract."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    default_message: ClassVar[str] = "The request could not be processed."
    # Set once the lead's source is known: its answers' format when `Accept` leaves it open.
    reply_format: ReplyFormat | None = None

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message or self.default_message
        self.details: Mapping[str, object] = details
        super().__init__(self.message)


class InvalidRequest(LeadError):
    code = ErrorCode.INVALID_REQUEST
    default_message = "The request is not valid."


class InvalidSource(LeadError):
    code = ErrorCode.INVALID_SOURCE
    default_message = "source_id does not name an active source."


class InvalidSourceKey(LeadError):
    code = ErrorCode.INVALID_SOURCE_KEY
    default_message = "source_key does not name an active source."


class SourceKeyRequired(InvalidSourceKey):
    default_message = "This source requires its source_key in every post."

    def __init__(self, message: str | None = None, **details: object) -> None:
        super().__init__(message, **{"reason": "required", **details})


class ClientNotAllowed(LeadError):
    code = ErrorCode.CLIENT_NOT_ALLOWED
    default_message = "This source does not accept leads from the address this request came from."


class UnmappedSource(LeadError):
    code = ErrorCode.UNMAPPED_SOURCE
    default_message = "No source is mapped to the host and path this lead was posted to."


class AmbiguousSourceMapping(LeadError):
    code = ErrorCode.AMBIGUOUS_SOURCE_MAPPING
    default_message = "More than one source is mapped to the host and path this lead was posted to."


class InvalidIdempotencyKeyFormat(LeadError):
    code = ErrorCode.INVALID_IDEMPOTENCY_KEY_FORMAT
    default_message = "The idempotency key must be 1 to 255 printable ASCII characters."


class IdempotencyDerivationFailed(LeadError):
    code = ErrorCode.IDEMPOTENCY_DERIVATION_FAILED
    default_message = (
        "No idempotency key was given and none can be derived: send an email or a phone."
    )


class IdempotencyKeyReused(LeadError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED
    default_message = (
        "This idempotency key was used for a lead with other content: send this lead under "
        "a key of its own."
    )


class ServiceUnavailable(LeadError):
    """The database cannot be reached in time; the request is safe to retry."""

    code = ErrorCode.SERVICE_UNAVAILABLE
    default_message = "The service is temporarily unavailable; retry later."
