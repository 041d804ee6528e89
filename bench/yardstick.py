"""bench/run's yardstick: about the least a FastAPI app on raw asyncpg does for a new lead of
the example catalog, and none of the project's own layers. It classifies by `source_id` or
`source_key`, normalizes email and phone (SPEC §7), takes or derives the idempotency key and the
lead_id (SPEC §8), writes the row the service writes in two statements (source lookup, INSERT …
ON CONFLICT DO NOTHING; a third, the stored lead, on conflict) and answers the service's body.

    DATABASE_URL=postgresql://… python -m uvicorn bench.yardstick:app

A yardstick, not a second implementation: no HTTP mapping, no field validation, no catalog
cache, no error handling beyond an unknown source.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import phonenumbers
from fastapi import FastAPI, Request
from fastapi.responses import Response

LEAD_ID_NAMESPACE = uuid.UUID("475b17ed-23d3-5374-9bae-ea431261849e")
CONTACT = ["email", "phone", "first_name", "last_name", "address", "city", "region"]
CONTACT += ["postal_code", "country"]
SELECTORS = ["source_id", "source_key", "idempotency_key", "is_test"]
BINDINGS = ["source_id", "offer_id", "market_id", "vertical_id"]
SOURCE = (
    "SELECT s.source_id, o.offer_id, o.market_id, o.vertical_id, m.phone_region "
    "FROM sources s JOIN offers o ON o.offer_id = s.offer_id "
    "JOIN markets m ON m.market_id = o.market_id WHERE s.is_active AND o.is_active AND "
)
BY_ID, BY_KEY = SOURCE + "s.source_id = $1", SOURCE + "s.source_key = $1"
COLUMNS = ["lead_id", *BINDINGS, "idempotency_key", "idempotency_key_origin", "is_test", *CONTACT]
COLUMNS += ["normalized_email", "normalized_phone", "attributes", "received_host"]
COLUMNS += ["received_path", "client_ip", "user_agent"]
ANSWER = ", ".join(["lead_id", *BINDINGS, "idempotency_key", "idempotency_key_origin", "status"])
INSERT = (
    f"INSERT INTO leads ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(COLUMNS) + 1))}) "
    f"ON CONFLICT (source_id, idempotency_key) DO NOTHING RETURNING {ANSWER}"
)
STORED = f"SELECT {ANSWER} FROM leads WHERE source_id = $1 AND idempotency_key = $2"


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Nothing to reset (no transactions, no session state): no round trip on release."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    app.state.pool = await asyncpg.create_pool(url, min_size=1, max_size=10, reset=_no_reset)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


def absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalized_phone(phone: str | None, region: str | None) -> str | None:
    text = unicodedata.normalize("NFKC", phone).strip() if phone else ""
    try:
        number = phonenumbers.parse(text, region)
        possible = phonenumbers.is_possible_number_with_reason(number)
    except phonenumbers.NumberParseException:
        possible = None
    if possible == phonenumbers.ValidationResult.IS_POSSIBLE:
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    else:
        text = "".join(c for c in text if c in "0123456789")
    return text if sum(c in "0123456789" for c in text) >= 7 else None


def derived_key(
    contact: dict[str, Any], email: str | None, phone: str | None, is_test: bool, attributes: Any
) -> str:
    content = {k: v.strip() for k, v in contact.items() if v and v.strip()}
    content.update(is_test=is_test, attributes=attributes, email=email, phone=phone)
    present = {k: v for k, v in content.items() if v is not None}
    canonical = json.dumps(present, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "d1:" + hashlib.sha256(canonical.encode()).hexdigest()


def error(code: str) -> Response:
    body = {"error": {"code": code, "message": "no active source", "details": {}}}
    return Response(orjson.dumps(body), status_code=400, media_type="application/json")


@app.get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    await request.app.state.pool.fetchval("SELECT 1")
    return {"status": "ready"}


@app.post("/api/leads")
async def ingest(request: Request) -> Response:
    fields: dict[str, Any] = orjson.loads(await request.body())
    contact = {name: fields.get(name) for name in CONTACT}
    attributes = {k: v for k, v in fields.items() if k not in CONTACT and k not in SELECTORS}
    is_test = fields.get("is_test") in (True, "true", "1")
    client_key = fields.get("idempotency_key") or request.headers.get("idempotency-key")
    async with request.app.state.pool.acquire() as connection:
        if not absent(fields.get("source_id")):
            source = await connection.fetchrow(BY_ID, int(fields["source_id"]))
        elif not absent(fields.get("source_key")):
            source_key = unicodedata.normalize("NFKC", fields["source_key"]).strip().lower()
            source = await connection.fetchrow(BY_KEY, source_key)
        else:
            return error("invalid_source")
        if source is None:
            return error("invalid_source")
        email = (contact["email"] or "").strip().lower() or None
        phone = normalized_phone(contact["phone"], source["phone_region"])
        if absent(client_key):
            key, origin = derived_key(contact, email, phone, is_test, attributes), "derived"
        else:
            key, origin = str(client_key).strip(), "client"
        lead_id = uuid.uuid5(LEAD_ID_NAMESPACE, f"{source['source_id']}:{key}")
        row = await connection.fetchrow(
            INSERT, lead_id, *(source[name] for name in BINDINGS), key, origin, is_test,
            *contact.values(), email, phone,
            orjson.dumps(attributes).decode(), request.url.hostname, request.url.path,
            request.client.host if request.client else None, request.headers.get("user-agent"),
        )  # fmt: skip
        replayed = row is None
        if row is None:
            row = await connection.fetchrow(STORED, source["source_id"], key)
    body = {**dict(row), "lead_id": str(row["lead_id"]), "replayed": replayed}
    return Response(orjson.dumps(body), status_code=200 if replayed else 201,
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"} if replayed else None)  # fmt: skip
