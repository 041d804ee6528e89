"""Erasure's database access: the matching leads, emptied in batches, and the audit row."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.erase_contact import CriterionKind
from domain.consent import CONSENT_COLUMNS
from domain.erasure import ERASED_KEY_PREFIX, ErasureError
from domain.fields import CONTACT_FIELDS
from handlers.erase_contact_ports import Criterion
from infrastructure.engine import unavailable_on_db_failure

# Emptied by erasure: the person's data, and what retrieves it elsewhere (a TrustedForm
# certificate, a LeadiD token, a page URL's query string). `consent_at` stays.
ERASED_COLUMNS: tuple[str, ...] = (
    *CONTACT_FIELDS,
    "normalized_email",
    "normalized_phone",
    "client_ip",
    "user_agent",
    "fingerprint",  # a hash of the person's data, like a derived key
    *(column for column in CONSENT_COLUMNS if column != "consent_at"),
)
_MATCHES = {
    "email": "normalized_email = :value",
    "phone": "normalized_phone = :value",
    "received_before": "created_at < :received_before",
}
_SET_ERASED = ", ".join(
    [
        "erased_at = now()",
        *(f"{column} = NULL" for column in ERASED_COLUMNS),
        "attributes = '{}'::jsonb",
        "idempotency_key = CASE l.idempotency_key_origin "
        f"WHEN 'derived' THEN '{ERASED_KEY_PREFIX}' || l.lead_id::text "
        "ELSE l.idempotency_key END",
    ]
)


def _where(criterion: Criterion) -> str:
    source = " AND source_id = :source_id" if criterion.source_id is not None else ""
    return f"erased_at IS NULL AND {_MATCHES[criterion.kind]}{source}"


class SqlErasureStore:
    """Each method is its own transaction; an erasure takes whatever time it needs (no
    statement timeout) and waits for the rows it erases to be free."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def _run(self, sql: str, params: dict[str, Any]) -> Any:
        async with self._connection.begin():
            await self._connection.execute(text("SET LOCAL statement_timeout = 0"))
            return (await self._connection.execute(text(sql), params)).scalar_one_or_none()

    async def source_id(self, code: str) -> int | None:
        found = await self._run("SELECT source_id FROM sources WHERE code = :code", {"code": code})
        return None if found is None else int(found)

    async def count(self, criterion: Criterion) -> int:
        sql = f"SELECT count(*) FROM leads WHERE {_where(criterion)}"
        return int(await self._run(sql, asdict(criterion)))

    async def start(self, criterion: Criterion, criterion_hash: str | None) -> int:
        sql = (
            "INSERT INTO lead_erasures (criterion, criterion_hash, received_before, source_id) "
            "VALUES (:kind, :hash, :received_before, :source_id) RETURNING erasure_id"
        )
        return int(await self._run(sql, {**asdict(criterion), "hash": criterion_hash}))

    async def erase_batch(self, erasure_id: int, criterion: Criterion, limit: int) -> int:
        sql = (
            f"WITH batch AS (SELECT source_id, lead_id FROM leads WHERE {_where(criterion)} "
            "LIMIT :limit FOR UPDATE), "
            f"erased AS (UPDATE leads l SET {_SET_ERASED} FROM batch "
            "WHERE l.source_id = batch.source_id AND l.lead_id = batch.lead_id RETURNING 1), "
            "counted AS (UPDATE lead_erasures SET leads_erased = leads_erased + "
            "(SELECT count(*) FROM erased) WHERE erasure_id = :erasure_id) "
            "SELECT count(*) FROM erased"
        )
        params = {**asdict(criterion), "limit": limit, "erasure_id": erasure_id}
        return int(await self._run(sql, params))

    async def finish(self, erasure_id: int) -> None:
        sql = "UPDATE lead_erasures SET finished_at = now() WHERE erasure_id = :id RETURNING 1"
        await self._run(sql, {"id": erasure_id})


@asynccontextmanager
async def open_erasure_store(engine: AsyncEngine) -> AsyncIterator[SqlErasureStore]:
    async with unavailable_on_db_failure(), engine.connect() as connection:
        yield SqlErasureStore(connection)


class HmacCriterionHasher:
    """HMAC-SHA256 of `kind:value` under LEADS_ERASURE_KEY: the same person's erasures can be
    told apart from others' with the key, and the address or number is never stored."""

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def __call__(self, kind: CriterionKind, value: str) -> str:
        if not self._key:
            raise ErasureError(
                "LEADS_ERASURE_KEY is not set: set it to a secret of 32 characters or more "
                "(the audit row keeps a keyed hash of the email or phone number, never it)"
            )
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
