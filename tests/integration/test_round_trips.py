"""Database round trips per request (SPEC §9): ≤ 4 for a new lead, ≤ 5 for a replay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.support import Catalog


class RoundTrips:
    """Counts what the service's engine sends: BEGIN, each statement, COMMIT/ROLLBACK."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sent.append(statement.split(None, 1)[0].upper())

    def begin(self, conn: Any) -> None:
        self.sent.append("BEGIN")

    def commit(self, conn: Any) -> None:
        self.sent.append("COMMIT")

    def rollback(self, conn: Any) -> None:
        self.sent.append("ROLLBACK")


@pytest.fixture
def round_trips(app: Any) -> Iterator[RoundTrips]:
    engine = app.state.application.engine.sync_engine
    counter = RoundTrips()
    hooks = {
        "before_cursor_execute": counter.statement,
        "begin": counter.begin,
        "commit": counter.commit,
        "rollback": counter.rollback,
    }
    for name, hook in hooks.items():
        event.listen(engine, name, hook)
    yield counter
    for name, hook in hooks.items():
        event.remove(engine, name, hook)


@pytest.mark.parametrize("selector", ["source_id", "source_key", "mapping"])
async def test_new_lead_and_replay_round_trips(
    client: httpx.AsyncClient, catalog: Catalog, round_trips: RoundTrips, selector: str
) -> None:
    source = await catalog.source()
    headers = {}
    body: dict[str, object] = {"email": "count@x.co", "idempotency_key": "count"}
    if selector == "mapping":
        headers["Host"] = f"rt-{source.code}.example.com"
        await catalog.mapping(source.source_id, headers["Host"])
    else:
        body[selector] = getattr(source, selector)

    response = await client.post("/api/leads", json=body, headers=headers)
    assert response.status_code == 201
    assert round_trips.sent == ["BEGIN", "SELECT", "INSERT", "COMMIT"]

    round_trips.sent.clear()
    response = await client.post("/api/leads", json=body, headers=headers)
    assert response.status_code == 200
    assert round_trips.sent == ["BEGIN", "SELECT", "INSERT", "SELECT", "COMMIT"]


async def test_a_rejected_lead_rolls_back(
    client: httpx.AsyncClient, round_trips: RoundTrips
) -> None:
    response = await client.post(
        "/api/leads", json={"source_key": "nobody-has-this", "email": "x@y.z"}
    )
    assert response.status_code == 400
    assert round_trips.sent == ["BEGIN", "SELECT", "ROLLBACK"]
