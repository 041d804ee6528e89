"""A client's idempotency key reused with other content, through the real bus on the fakes:
replayed by default, refused with 422 at a `key_reuse: reject` source; derived keys and
identical retries are unaffected, and formatting is not content."""

from __future__ import annotations

from commands.ingest_lead import IngestLead
from domain.errors import IdempotencyKeyReused
from domain.sources import KeyReuse
from tests.unit.fakes import FakeDatabase, FakeLeadStores, FakeOffer, bus_with


def ingest(fields: dict[str, object], key: str | None = "order-1") -> IngestLead:
    return IngestLead.from_posted(
        {"source_id": 7, **fields}, [key] if key else [], "leads.example.com", "/api/leads", None
    )


async def run(policy: KeyReuse, *commands: IngestLead) -> list[object]:
    database = FakeDatabase()
    database.add_source(7, FakeOffer(1, 1, 1, "US"), key_reuse=policy)
    bus = bus_with(FakeLeadStores(database))
    outcomes: list[object] = []
    for command in commands:
        try:
            outcomes.append((await bus.execute(command)).replayed)
        except IdempotencyKeyReused as error:
            outcomes.append(error.code.status)
    return outcomes


FIRST = {"email": "jane@example.com", "phone": "(415) 555-2671"}
OTHER = {"email": "sam@example.com"}
REFORMATTED = {"email": "  JANE@example.com ", "phone": "+1 415-555-2671"}


async def test_by_default_a_reused_key_replays_the_stored_lead() -> None:
    assert await run("replay", ingest(FIRST), ingest(OTHER)) == [False, True]


async def test_a_rejecting_source_answers_422_to_other_content_and_replays_a_retry() -> None:
    outcomes = await run("reject", ingest(FIRST), ingest(OTHER), ingest(REFORMATTED))
    assert outcomes == [False, 422, True]


async def test_derived_keys_are_their_content_so_never_reused() -> None:
    outcomes = await run("reject", ingest(FIRST, None), ingest(REFORMATTED, None))
    assert outcomes == [False, True]
