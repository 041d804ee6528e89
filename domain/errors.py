"""Typed errors of the service: each carries its stable code and HTTP-independent details."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class LeadError(Exception):
    """Base of every error a client can be told about; `code` is part of the API contract."""

    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "The request could not be processed."

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message or self.default_message
        self.details: Mapping[str, object] = details
        super().__init__(self.message)


class InvalidRequest(LeadError):
    code = "invalid_request"
    default_message = "The request is not valid."


class InvalidSource(LeadError):
    code = "invalid_source"
    default_message = "source_id does not name an active source."


class InvalidSourceKey(LeadError):
    code = "invalid_source_key"
    default_message = "source_key does not name an active source."


class SourceKeyRequired(InvalidSourceKey):
    """The source takes leads only with its own key, and the request carried none."""

    default_message = "This source requires its source_key in every post."

    def __init__(self, message: str | None = None, **details: object) -> None:
        super().__init__(message, **{"reason": "required", **details})


class ClientNotAllowed(LeadError):
    """The client address is outside the source's allowed networks (never listed to it)."""

    code = "client_not_allowed"
    default_message = "This source does not accept leads from the address this request came from."


class UnmappedSource(LeadError):
    code = "unmapped_source"
    default_message = "No source is mapped to the host and path this lead was posted to."


class AmbiguousSourceMapping(LeadError):
    code = "ambiguous_source_mapping"
    default_message = "More than one source is mapped to the host and path this lead was posted to."


class InvalidIdempotencyKeyFormat(LeadError):
    code = "invalid_idempotency_key_format"
    default_message = "The idempotency key must be 1 to 255 printable ASCII characters."


class IdempotencyDerivationFailed(LeadError):
    code = "idempotency_derivation_failed"
    default_message = (
        "No idempotency key was given and none can be derived: send an email or a phone."
    )


class ServiceUnavailable(LeadError):
    """The database cannot be reached in time; the request is safe to retry."""

    code = "service_unavailable"
    default_message = "The service is temporarily unavailable; retry later."
