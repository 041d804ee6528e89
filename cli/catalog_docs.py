"""Posting instructions for one source: the text `leads catalog docs SOURCE_CODE` prints.

The field table is derived from domain/fields.py, the one the validation uses, and the error
table from domain/errors.py, the one the HTTP answers use.
"""

from __future__ import annotations

import json
import shlex
from urllib.parse import quote, urlsplit

import phonenumbers

from domain.catalog import LEADS_PATH, Source, SourceDescription, posting_path
from domain.errors import ErrorCode, InvalidSource
from domain.fields import MAX_ATTRIBUTES, POSTED_FIELDS, FieldType, PostedField
from domain.idempotency import lead_id_for
from domain.lead import LEAD_VIEW_FIELDS
from domain.replies import ReplyFormat, render

DEFAULT_BASE_URL = "http://localhost:8000"

# How each type of the field table reads to a publisher.
_TYPE_TEXT: dict[FieldType, str] = {
    "source_id": "integer, or string of digits",
    "text": "string",
    "text_or_integer": "string or integer",
    "flag": "boolean, or true/false/1/0",
}


def _plain(text: str) -> str:
    """Markdown code spans as plain text, for a terminal."""
    return text.replace("`", "")


def _limit_text(field: PostedField) -> str:
    limit = f"at most {field.limit} characters" if field.limit is not None else ""
    return "; ".join(part for part in (limit, _plain(field.description)) if part)


# (field, accepted types, limit or meaning), derived from the field table (domain/fields.py).
FIELDS: tuple[tuple[str, str, str], ...] = tuple(
    (field.name, _TYPE_TEXT[field.type], _limit_text(field)) for field in POSTED_FIELDS
)


# (code, HTTP status, when), derived from the table of error codes (domain/errors.py).
ERRORS: tuple[tuple[str, str, str], ...] = tuple(
    (code.value, str(code.status), _plain(code.meaning)) for code in ErrorCode
)


def _example_phone(region: str | None) -> str:
    mobile = phonenumbers.PhoneNumberType.MOBILE
    number = phonenumbers.example_number_for_type(region or "US", mobile)
    if number is None:  # a few regions (e.g. TA) have no mobile example
        number = phonenumbers.example_number_for_type("US", mobile)
    assert number is not None, "phonenumbers has a US mobile example"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns; the last one runs free."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  " + "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]


def _intake_lines(source: Source) -> list[str]:
    """What the source demands of each post (key, network) and the field names it may use."""
    lines = ["", "Access"]
    if source.require_key:
        lines += [
            "  source_key: required in every post (body or query string), however the source",
            "              is selected; without it: 400 invalid_source_key (reason: required)",
        ]
    else:
        lines.append("  source_key: not required when source_id or the posting URL selects it")
    if source.allowed_networks:
        lines += [
            f"  networks:   posts are accepted only from {', '.join(source.allowed_networks)};",
            "              from any other address: 403 client_not_allowed",
        ]
    else:
        lines.append("  networks:   posts are accepted from any address")
    if source.key_reuse == "reject":
        lines += [
            "  key reuse:  an idempotency key sent again with other content is refused:",
            "              422 idempotency_key_reused; a retry of the same lead replays it",
        ]
    else:
        lines.append(
            "  key reuse:  an idempotency key sent again replays its lead, whatever it carries"
        )
    if source.aliases:
        lines += ["", "Your field names (accepted instead of ours; names match case-insensitively)"]
        lines += _table([("you send", "stored as"), *sorted(source.aliases.items())])
        lines.append("  Sending a name and its field with different values is an error.")
    return lines


def _example_body(description: SourceDescription, mapped: bool) -> dict[str, object]:
    """The example lead, in the source's own field names where it has aliases."""
    source = description.source
    body: dict[str, object] = {}
    if source.source_key is not None and (source.require_key or not mapped):
        body["source_key"] = source.source_key
    elif not mapped:
        body["source_id"] = description.source_id
    own_name = {target: alias for alias, target in sorted(source.aliases.items(), reverse=True)}
    fields = {
        "email": "jane.doe@example.com",
        "phone": _example_phone(description.market.phone_region),
        "first_name": "Jane",
        "last_name": "Doe",
    }
    body.update({own_name.get(name, name): value for name, value in fields.items()})
    body["campaign"] = "spring-promo"
    return body


def posting_instructions(
    description: SourceDescription, base_url: str | None = None, max_body_bytes: int = 65536
) -> str:
    """The instructions for one source; holds its own key and never another source's."""
    source, offer, market = description.source, description.offer, description.market
    scheme = urlsplit(base_url).scheme if base_url else "https"
    generic_url = (base_url or DEFAULT_BASE_URL).rstrip("/") + LEADS_PATH
    mapping_urls = list(
        dict.fromkeys(
            f"{scheme}://{m.hostname}{quote(posting_path(m.path_prefix))}"
            for m in description.mappings
        )
    )
    region = f", phone region {market.phone_region}" if market.phone_region else ""
    lines = [
        f"Posting instructions for source {source.code}: {source.name}",
        f"  offer     {offer.code}: {offer.name}",
        f"  market    {market.code}: {market.name}{region}",
        f"  vertical  {description.vertical.code}: {description.vertical.name}",
    ]
    if not description.accepts_leads:
        why = "this source is inactive" if not source.active else f"offer {offer.code} is inactive"
        lines += ["", f"WARNING: {why}, so posts to it are rejected until it is activated."]

    selectors = "source_id" if source.source_key is None else "source_id or source_key"
    if source.require_key:
        selectors = "source_key"
    lines += ["", "Where to post"]
    lines += [f"  POST {url}" for url in mapping_urls]
    lines.append(
        f"  {'or ' if mapping_urls else ''}POST {generic_url} with {selectors} in the body"
    )
    lines += [
        "  Body: a JSON object (Content-Type: application/json), a form",
        "  (application/x-www-form-urlencoded) or an XML document (application/xml or",
        f"  text/xml: <lead><email>...</email>...</lead>), at most {max_body_bytes} bytes.",
        "  Query-string parameters count as fields too.",
    ]

    lines += ["", "How the source is identified (the first one sent wins)"]
    lines.append(f"  1. source_id: {description.source_id} (body or query string)")
    if source.source_key is not None:
        lines.append(
            f"  2. source_key: {source.source_key} (body or query string; a secret: "
            "share it only with this source)"
        )
    else:
        lines.append("  2. source_key: this source has none")
    if mapping_urls:
        lines.append("  3. the posting URL itself (host and path above), when neither is sent")
    else:
        lines.append("  3. posting URL: this source has no HTTP mapping, so send 1 or 2")

    lines += _intake_lines(source)

    lines += ["", "Fields (all optional; names match case-insensitively)"]
    lines += _table([("field", "type", "limit"), *FIELDS])
    lines += [
        f"  Any other top-level field is stored as posted in the lead's attributes "
        f"(at most {MAX_ATTRIBUTES}).",
        "  Strings must not contain U+0000 or unpaired surrogates; null or blank means absent.",
    ]

    lines += [
        "",
        "Idempotency",
        "  - Send a key in the Idempotency-Key header or the idempotency_key field",
        "    (1-255 printable ASCII characters, trimmed); if both are sent they must be equal.",
        "  - Without a key, one is derived from the contact fields, is_test and attributes,",
        "    so a lead without a key needs an email or a phone.",
        "  - 201 Created for a new lead. The same key again returns 200 OK with the header",
        "    Idempotent-Replayed: true and the stored lead (even if the body differs).",
        "  - After a timeout or a 5xx, retry with the same key: it never creates a second lead.",
    ]

    lines += _response_lines(description)
    lines += _table([("code", "HTTP", "when"), *ERRORS])

    body = _example_body(description, mapped=bool(mapping_urls))
    url = mapping_urls[0] if mapping_urls else generic_url
    if source.reply_format is ReplyFormat.XML:
        content_type = ReplyFormat.XML.media_type
        posted = render(content_type, body, "lead").decode()
    else:
        content_type, posted = "application/json", json.dumps(body, ensure_ascii=False)
    lines += [
        "",
        "Example",
        f"  curl -sS -X POST {shlex.quote(url)} \\",
        f"    -H 'Content-Type: {content_type}' \\",
        "    -H 'Idempotency-Key: order-10001' \\",
        f"    -d {shlex.quote(posted)}",
    ]
    return "\n".join(lines) + "\n"


def _response_lines(description: SourceDescription) -> list[str]:
    """How answers look, in the source's reply format (domain/replies.py)."""
    reply_format = description.source.reply_format
    lines = [
        "",
        f"Responses ({reply_format.name} unless your Accept header asks for application/json,",
        "  application/xml, text/xml or text/plain)",
    ]
    if reply_format is ReplyFormat.JSON:
        return [
            *lines,
            f'  Success: {{"lead_id": "<uuid>", "source_id": {description.source_id}, '
            '"offer_id": <id>, "market_id": <id>,',
            '            "vertical_id": <id>, "idempotency_key": "<key>",',
            '            "idempotency_key_origin": "client", "status": "received",',
            '            "replayed": false}',
            '  Error: {"error": {"code": "<code>", "message": "<text>", "details": {...}}}',
        ]
    # The lead the example below creates, in the answer's order (what is not known here, the
    # ids of its offer, market and vertical, elided).
    lead: dict[str, object] = dict.fromkeys((*LEAD_VIEW_FIELDS, "replayed"), "...")
    lead.update(
        lead_id=str(lead_id_for(description.source_id, "order-10001")),
        source_id=description.source_id,
        idempotency_key="order-10001",
        idempotency_key_origin="client",
        status="received",
        replayed=False,
    )
    refusal = InvalidSource(reason="not_found")
    details = dict(refusal.details)
    error = {"error": {"code": refusal.code.value, "message": refusal.message, "details": details}}
    media = reply_format.media_type
    answers = (("Success", render(media, lead, "lead")), ("Error", render(media, error, "error")))
    for title, answer in answers:
        lines.append(f"  {title}:")
        lines += [f"    {line}" for line in answer.decode().splitlines()]
    return lines
