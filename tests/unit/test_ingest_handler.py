"""`IngestLead` through the real command bus and handler, on the in-memory unit of work.

Fast (no database): classification, keys, replays, normalization and transaction handling.
The same rules run against PostgreSQL in tests/integration/test_ingest_*.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from commands.ingest_lead import IngestLead, LeadIngested
from domain.errors import (
    AmbiguousSourceMapping,
    IdempotencyDerivationFailed,
    InvalidSource,
    InvalidSourceKey,
    LeadError,
    ServiceUnavailable,
    UnmappedSource,
)
from domain.idempotency import lead_id_for
from handlers.bus import CommandBus, UnknownCommand
from handlers.ingest_lead import MAX_ATTEMPTS
from tests.unit.fakes import FakeDatabase, FakeLeadStores, FakeMapping, FakeOffer, bus_with

US_SOLAR = FakeOffer(offer_id=3, market_id=1, vertical_id=2, phone_region="US")
GB_SOLAR = FakeOffer(offer_id=4, market_id=5, vertical_id=2, phone_region="GB")
HOST = "leads.example.com"


@pytest.fixture
def database() -> FakeDatabase:
    database = FakeDatabase()
    database.add_source(7, US_SOLAR, "acme")
    database.add_source(8, GB_SOLAR, "brit")
    database.add_source(9, US_SOLAR)  # no key
    database.mappings += [
        FakeMapping(7, HOST, "/api/leads"),
        FakeMapping(9, HOST, "/api/leads/nine"),
    ]
    return database


@pytest.fixture
def bus(database: FakeDatabase) -> CommandBus:
    return bus_with(FakeLeadStores(database))


async def ingest(
    bus: CommandBus,
    fields: Mapping[str, object],
    *,
    header: Sequence[str] = (),
    host: str | None = HOST,
    path: str = "/api/leads",
) -> LeadIngested:
    return await bus.execute(IngestLead.from_posted(fields, header, host, path))


async def refused(bus: CommandBus, fields: Mapping[str, object], **origin: str | None) -> LeadError:
    with pytest.raises(LeadError) as error:
        await ingest(bus, fields, **origin)  # type: ignore[arg-type]
    return error.value


async def test_by_source_id_binds_the_sources_offer(
    bus: CommandBus, database: FakeDatabase
) -> None:
    result = await ingest(bus, {"source_id": "8", "idempotency_key": "k-1", "email": "a@b.co"})
    assert result.replayed is False
    lead = result.lead
    assert (lead.source_id, lead.offer_id, lead.market_id, lead.vertical_id) == (8, 4, 5, 2)
    assert lead.lead_id == lead_id_for(8, "k-1")
    assert (lead.idempotency_key, lead.idempotency_key_origin, lead.status) == (
        "k-1",
        "client",
        "received",
    )
    assert list(database.leads) == [(8, "k-1")]
    assert database.writes == 1


async def test_by_source_key_canonical(bus: CommandBus) -> None:
    result = await ingest(bus, {"source_key": "  ACME ", "email": "a@b.co"}, host=None)
    assert result.lead.source_id == 7


async def test_by_mapping_longest_prefix_wins(bus: CommandBus, database: FakeDatabase) -> None:
    nine = await ingest(
        bus, {"email": "a@b.co"}, host="Leads.Example.COM:443", path="/api/leads/nine/x"
    )
    assert nine.lead.source_id == 9
    seven = await ingest(bus, {"email": "a@b.co"}, path="/api//leads/./ninety")
    assert seven.lead.source_id == 7
    stored = database.leads[(9, nine.lead.idempotency_key)]
    assert (stored.received_host, stored.received_path) == (HOST, "/api/leads/nine/x")


async def test_selector_priority(bus: CommandBus) -> None:
    """source_id beats source_key beats the URL."""
    assert (await ingest(bus, {"source_id": 9, "email": "a@b.co"})).lead.source_id == 9
    assert (await ingest(bus, {"source_key": "brit", "email": "a@b.co"})).lead.source_id == 8
    both = await ingest(bus, {"source_id": 7, "source_key": "Acme", "email": "a@b.co"})
    assert both.lead.source_id == 7


@pytest.mark.parametrize(
    ("fields", "origin", "error_type", "details"),
    [
        ({"source_id": 99}, {}, InvalidSource, {"reason": "not_found"}),
        ({"source_key": "nobody"}, {}, InvalidSourceKey, {"reason": "not_found"}),
        ({"source_key": "no key!"}, {}, InvalidSourceKey, {"reason": "malformed"}),
        ({"source_key": 5}, {}, InvalidSourceKey, {"reason": "malformed"}),
        (
            {"source_id": 7, "source_key": "brit"},
            {},
            InvalidSourceKey,
            {"reason": "conflicts_with_source_id"},
        ),
        (
            {"source_id": 9, "source_key": "acme"},  # 9 has no key at all
            {},
            InvalidSourceKey,
            {"reason": "conflicts_with_source_id"},
        ),
        ({}, {"host": None}, UnmappedSource, {"reason": "invalid_host"}),
        ({}, {"host": "other.example"}, UnmappedSource, {}),
        ({}, {"path": "/elsewhere"}, UnmappedSource, {}),
    ],
)
async def test_unknown_sources_are_refused(
    bus: CommandBus,
    database: FakeDatabase,
    fields: dict[str, object],
    origin: dict[str, str | None],
    error_type: type[LeadError],
    details: dict[str, object],
) -> None:
    error = await refused(bus, {**fields, "email": "a@b.co"}, **origin)
    assert type(error) is error_type
    assert dict(error.details) == details
    assert database.leads == {} and database.writes == 0


async def test_ambiguous_mapping(bus: CommandBus, database: FakeDatabase) -> None:
    database.mappings.append(FakeMapping(8, HOST, "/api/leads"))
    error = await refused(bus, {"email": "a@b.co"})
    assert isinstance(error, AmbiguousSourceMapping)
    assert error.details == {"source_ids": [7, 8]}
    # A selector in the body does not look at the mapping at all.
    assert (await ingest(bus, {"source_id": 8, "email": "a@b.co"})).lead.source_id == 8


@pytest.mark.parametrize("what", ["source", "offer", "mapping"])
async def test_inactive_is_not_found(bus: CommandBus, database: FakeDatabase, what: str) -> None:
    source = database.sources[7]
    if what == "source":
        source.active = False
    elif what == "offer":
        source.offer = FakeOffer(3, 1, 2, "US", active=False)
    else:
        database.mappings[0].active = False
    database.change()
    by_url = await refused(bus, {"email": "a@b.co"})
    assert isinstance(by_url, UnmappedSource)
    if what != "mapping":
        assert isinstance(await refused(bus, {"source_id": 7, "email": "a@b.co"}), InvalidSource)
        assert isinstance(
            await refused(bus, {"source_key": "acme", "email": "a@b.co"}), InvalidSourceKey
        )
    assert database.writes == 0


async def test_replay_returns_the_stored_lead_and_current_status(
    bus: CommandBus, database: FakeDatabase
) -> None:
    first = await ingest(bus, {"source_id": 7, "email": "a@b.co"}, header=["order-1"])
    # A later stage moves the lead on; the catalog moves the source to another offer.
    database.statuses[(7, "order-1")] = "validated"
    database.sources[7].offer = GB_SOLAR
    again = await ingest(bus, {"source_id": 7, "email": "other@b.co"}, header=['"order-1"'])
    assert again.replayed is True
    assert again.lead.lead_id == first.lead.lead_id
    assert (again.lead.offer_id, again.lead.market_id) == (3, 1)  # bindings as stored
    assert again.lead.status == "validated"
    assert len(database.leads) == 1
    assert database.leads[(7, "order-1")].contact["email"] == "a@b.co"


async def test_derived_key_replays_the_same_contact(
    bus: CommandBus, database: FakeDatabase
) -> None:
    fields = {"source_id": 7, "email": " A@B.co ", "phone": "(555) 123-4567", "campaign": "x"}
    first = await ingest(bus, fields)
    assert first.lead.idempotency_key_origin == "derived"
    assert first.lead.idempotency_key.startswith("d1:")
    again = await ingest(bus, {**fields, "email": "a@b.co"})  # normalizes to the same email
    assert (again.replayed, again.lead.lead_id) == (True, first.lead.lead_id)
    other = await ingest(bus, {**fields, "campaign": "y"})  # attributes are part of the key
    assert other.replayed is False
    assert len(database.leads) == 2


async def test_derivation_needs_email_or_phone(bus: CommandBus, database: FakeDatabase) -> None:
    error = await refused(bus, {"source_id": 7, "first_name": "Jane", "phone": "12"})
    assert isinstance(error, IdempotencyDerivationFailed)
    assert error.details == {"required_any_of": ["email", "phone"]}
    assert database.leads == {}


async def test_normalized_with_the_markets_phone_region(
    bus: CommandBus, database: FakeDatabase
) -> None:
    await ingest(bus, {"source_id": 7, "phone": "(201) 555-0123", "is_test": "true"}, header=["u"])
    await ingest(bus, {"source_id": 8, "phone": "020 7946 0018"}, header=["g"])
    us, gb = database.leads[(7, "u")], database.leads[(8, "g")]
    assert (us.normalized_phone, us.contact["phone"], us.is_test) == (
        "+12015550123",
        "(201) 555-0123",
        True,
    )
    assert (gb.normalized_phone, gb.is_test) == ("+442079460018", False)


async def test_the_same_key_on_two_sources_is_two_leads(
    bus: CommandBus, database: FakeDatabase
) -> None:
    a = await ingest(bus, {"source_id": 7, "email": "a@b.co"}, header=["same"])
    b = await ingest(bus, {"source_id": 8, "email": "a@b.co"}, header=["same"])
    assert not a.replayed and not b.replayed
    assert a.lead.lead_id != b.lead.lead_id


async def test_a_vanished_lead_is_retried_then_refused_as_unavailable(
    bus: CommandBus, database: FakeDatabase
) -> None:
    await ingest(bus, {"source_id": 7, "email": "a@b.co"}, header=["gone"])
    database.vanishing = True
    with pytest.raises(ServiceUnavailable):
        await ingest(bus, {"source_id": 7, "email": "a@b.co"}, header=["gone"])
    assert database.writes == 1 + MAX_ATTEMPTS
    assert len(database.leads) == 1


async def test_a_refused_lead_writes_nothing(bus: CommandBus, database: FakeDatabase) -> None:
    await refused(bus, {"source_id": 99, "email": "a@b.co"})
    assert (database.writes, database.leads) == (0, {})


async def test_the_bus_only_knows_registered_commands(bus: CommandBus) -> None:
    class Unregistered(IngestLead):
        __slots__ = ()

    command = IngestLead.from_posted({"source_id": 7, "email": "a@b.co"}, (), None, "/")
    with pytest.raises(UnknownCommand):
        await bus.execute(Unregistered(**{f: getattr(command, f) for f in command.__slots__}))
    # The handler is built once and reused.
    assert bus.handler_for(IngestLead) is bus.handler_for(IngestLead)
