"""`IngestLead`: create one posted lead exactly once, classified to its source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from commands.base import Command
from domain.classification import parse_source_id
from domain.idempotency import parse_idempotency_header, reconcile_client_key
from domain.lead import LeadView
from domain.submission import parse_submission


@dataclass(frozen=True, slots=True)
class LeadIngested:
    """The lead as stored (its current state); `replayed` is true when it already existed."""

    lead: LeadView
    replayed: bool

    def as_json(self) -> dict[str, object]:
        """The success body of SPEC §6.1: the lead's fields, then `replayed`."""
        body = self.lead.as_json()
        body["replayed"] = self.replayed
        return body


@dataclass(frozen=True, slots=True)
class IngestLead(Command[LeadIngested]):
    """A posted lead, as the client sent it.

    `source_id` and `source_key` are passed as posted (their errors have their own codes);
    `client_idempotency_key` is already validated and reconciled between header and body.
    `host` and `path` are where the request arrived, before canonicalization.
    """

    source_id: int | None
    source_key: object
    client_idempotency_key: str | None
    contact: Mapping[str, str | None]
    is_test: bool
    attributes: Mapping[str, object]
    host: str | None
    path: str

    @classmethod
    def from_posted(
        cls,
        fields: Mapping[str, object],
        key_header_values: Sequence[str],
        host: str | None,
        path: str,
    ) -> IngestLead:
        """The command for one posted lead, whatever carried it (HTTP body, file row).

        `fields` are the posted fields already merged (body and query string, or one row's
        columns; CSV cells are strings); `key_header_values` the `Idempotency-Key` header
        values (none outside HTTP); `host` None when there is no HTTP mapping to use.
        Raises the domain errors of SPEC §6 for whatever is malformed.
        """
        submission = parse_submission(fields)
        header_key = parse_idempotency_header(key_header_values)
        return cls(
            source_id=parse_source_id(submission.source_id),
            source_key=submission.source_key,
            client_idempotency_key=reconcile_client_key(header_key, submission.idempotency_key),
            contact=submission.contact,
            is_test=submission.is_test,
            attributes=submission.attributes,
            host=host,
            path=path,
        )
