"""`IngestLead`: create one posted lead exactly once, classified to its source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from commands.base import Command
from domain.classification import parse_source_id
from domain.client_address import Address, Network, client_address
from domain.idempotency import parse_idempotency_header, reconcile_client_key
from domain.intake import sanitize_user_agent
from domain.lead import LeadView
from domain.replies import ReplyFormat
from domain.submission import Submission, parse_submission


@dataclass(frozen=True, slots=True)
class LeadIngested:
    """The lead as stored (its current state); `replayed` is true when it already existed.
    `reply_format` is its source's, for an answer whose format the request leaves open (it is
    not part of the body)."""

    lead: LeadView
    replayed: bool
    reply_format: ReplyFormat = field(default=ReplyFormat.JSON, metadata={"body": False})

    def as_json(self) -> dict[str, object]:
        """The success body of SPEC §6.1: the lead's fields, then `replayed`."""
        body = self.lead.as_json()
        body["replayed"] = self.replayed
        return body


@dataclass(frozen=True, slots=True)
class HttpClient:
    """Who sent a lead over HTTP: the client address and the `User-Agent`, as stored."""

    address: Address | None
    user_agent: str | None

    @classmethod
    def from_request(
        cls,
        peer: str | None,
        forwarded_for: Sequence[str],
        user_agent: str | None,
        trusted_proxies: Sequence[Network],
    ) -> HttpClient:
        """`peer` is the TCP peer's address (None when unknown, e.g. a Unix socket),
        `forwarded_for` every `X-Forwarded-For` value, `user_agent` the header as received.
        Never raises: whatever the headers hold, the lead is not refused for them."""
        return cls(
            address=client_address(peer, forwarded_for, trusted_proxies),
            user_agent=sanitize_user_agent(user_agent),
        )


@dataclass(frozen=True, slots=True)
class IngestLead(Command[LeadIngested]):
    """A posted lead, its fields typed (`fields`; a source's aliases apply once it is known).

    `source_id` and `source_key` are as posted (their errors have their own codes);
    `client_idempotency_key` is already validated and reconciled between header and body;
    `host` and `path` are where the request arrived, before canonicalization. `client` is None
    when the lead came over no HTTP connection (`leads import`): then nothing is stored as its
    address or user agent, and the source's allowed networks, which restrict where HTTP posts
    come from, do not apply; a required key still does.
    """

    source_id: int | None
    source_key: object
    client_idempotency_key: str | None
    fields: Submission
    host: str | None
    path: str
    client: HttpClient | None = None

    @classmethod
    def from_posted(
        cls,
        fields: Mapping[str, object],
        key_header_values: Sequence[str],
        host: str | None,
        path: str,
        client: HttpClient | None = None,
    ) -> IngestLead:
        """The command for one posted lead, whatever carried it (HTTP body, file row).

        `fields` are the posted fields already merged (body and query string, or one row's
        columns); `key_header_values` the `Idempotency-Key` header values (none outside HTTP);
        `host` None when there is no HTTP mapping to use. Raises the domain errors of SPEC §6
        for whatever is malformed, the fields first.
        """
        submission = parse_submission(fields)
        header_key = parse_idempotency_header(key_header_values)
        return cls(
            source_id=parse_source_id(submission.source_id),
            source_key=submission.source_key,
            client_idempotency_key=reconcile_client_key(header_key, submission.idempotency_key),
            fields=submission,
            host=host,
            path=path,
            client=client,
        )
