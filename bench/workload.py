"""What the benchmark sends: the lead every client posts, the source it names, how many clients."""

from __future__ import annotations

import json

from domain.catalog import LEADS_PATH

SOURCE_KEY = "bench-source"
CLIENTS = 16  # concurrent connections of the sustained runs and the pgbench ceilings
IDENTICAL = 20  # identical POSTs released at once by the concurrent phase
IMPORT_ROWS = 20_000
IMPORT_CONCURRENCY = 8  # `leads import`'s own default
# The clients post to the service on 127.0.0.1, so that is the Host the service stores.
RECEIVED_HOST = "127.0.0.1"
RECEIVED_PATH = LEADS_PATH

# The lead's fields after its selectors: contact fields and two extra attributes. The HTTP
# clients (bench/client.py, bench/leads.lua), the import's CSV and the pgbench ceilings all
# send this lead.
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

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def posted(idempotency_key: str, source_key: str = SOURCE_KEY) -> dict[str, str]:
    """The fields of one posted lead, as the HTTP body and a CSV row carry them."""
    return {"source_key": source_key, "idempotency_key": idempotency_key, **LEAD}


def lead_body(idempotency_key: str, source_key: str = SOURCE_KEY) -> bytes:
    return json.dumps(posted(idempotency_key, source_key), separators=(",", ":")).encode()


def lead_body_tail() -> str:
    """The body after the idempotency key's value, for leads.lua: `,"email":…}`."""
    return "," + json.dumps(LEAD, separators=(",", ":"))[1:]
