"""What bench/run sends: one lead of the example catalog (examples/catalog.yaml), each time with
a unique idempotency key, from every client (sequential, wrk, `leads import`)."""

from __future__ import annotations

import json

SOURCE_KEY = "acme-solar-us"  # offer us-solar: market us, phone region US
CLIENTS = 16  # concurrent connections of wrk and pgbench (SPEC §9)
HEADERS = {"Content-Type": "application/json"}
LEAD: dict[str, str] = {
    "email": "Bench.User@Example.com",
    "phone": "(415) 555-0132",
    "first_name": "Bench",
    "last_name": "User",
    "address": "1 Market St",
    "city": "San Francisco",
    "region": "CA",
    "postal_code": "94105",
    "country": "US",
    "utm_source": "bench",
    "campaign": "spring",
}
_KEY = "@@key@@"


def posted(idempotency_key: str) -> dict[str, str]:
    """The fields of one lead, as an HTTP body and a CSV row carry them."""
    return {"source_key": SOURCE_KEY, "idempotency_key": idempotency_key, **LEAD}


def body(idempotency_key: str) -> bytes:
    return json.dumps(posted(idempotency_key), separators=(",", ":")).encode()


def wrk_arguments(key_prefix: str, accept: str) -> list[str]:
    """bench/leads.lua's arguments: the body up to the key's counter, the rest, the Accept."""
    before, after = body(_KEY).decode().split(_KEY)
    return [before + key_prefix + "-", after, accept]
