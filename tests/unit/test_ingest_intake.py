"""Publisher intake in the ingest handler, through the real bus on the in-memory lead store:
what a source asks of its leads, with and without an HTTP client. The same rules run over HTTP
against PostgreSQL in tests/integration/test_intake.py."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address

import pytest

from commands.ingest_lead import HttpClient, IngestLead
from domain.client_address import parse_networks
from domain.errors import LeadError
from domain.intake import MAX_USER_AGENT_CHARS
from handlers.bus import CommandBus
from tests.unit.fakes import FakeDatabase, FakeLeadStores, FakeOffer, bus_with

OFFER = FakeOffer(offer_id=3, market_id=1, vertical_id=2, phone_region="US")
KEY = "acme-0123456789ab"
PUBLISHER = HttpClient.from_request("203.0.113.7", (), "publisher/1", ())


@pytest.fixture
def database() -> FakeDatabase:
    database = FakeDatabase()
    database.add_source(
        7,
        OFFER,
        KEY,
        require_key=True,
        allowed_networks=parse_networks(["203.0.113.0/24"]),
        field_aliases={"zip": "postal_code", "fname": "first_name"},
    )
    database.add_source(8, OFFER, "plain-source")
    return database


@pytest.fixture
def bus(database: FakeDatabase) -> CommandBus:
    return bus_with(FakeLeadStores(database))


def command(fields: Mapping[str, object], client: HttpClient | None = PUBLISHER) -> IngestLead:
    return IngestLead.from_posted(fields, (), None, "/api/leads", client)


async def refusal(bus: CommandBus, ingest: IngestLead) -> tuple[str, object]:
    with pytest.raises(LeadError) as error:
        await bus.execute(ingest)
    return error.value.code, error.value.details.get("reason")


async def test_a_lead_from_http_is_admitted_aliased_and_stored_with_its_client(
    bus: CommandBus, database: FakeDatabase
) -> None:
    fields = {"source_id": 7, "source_key": KEY, "ZIP": "94105", "fname": "Jane", "x": 1}
    result = await bus.execute(command({**fields, "email": "a@b.co"}))
    (lead,) = database.leads.values()
    assert lead.contact["postal_code"] == "94105"
    assert lead.contact["first_name"] == "Jane"
    assert lead.attributes == {"x": 1}
    assert (lead.client_ip, lead.user_agent) == (ip_address("203.0.113.7"), "publisher/1")
    canonical = {"source_id": 7, "source_key": KEY, "postal_code": "94105", "x": 1}
    again = await bus.execute(command({**canonical, "first_name": "Jane", "email": "a@b.co"}))
    assert again.replayed
    assert again.lead.lead_id == result.lead.lead_id


async def test_the_sources_conditions_are_checked_before_anything_is_written(
    bus: CommandBus, database: FakeDatabase
) -> None:
    base = {"source_id": 7, "email": "a@b.co"}
    assert await refusal(bus, command(base)) == ("invalid_source_key", "required")
    stranger = HttpClient.from_request("198.51.100.7", (), None, ())
    keyed = {**base, "source_key": KEY}
    assert await refusal(bus, command(keyed, stranger)) == ("client_not_allowed", None)
    assert await refusal(bus, command({**keyed, "zip": "1", "postal_code": "2"})) == (
        "invalid_request",
        "conflicting_values",
    )
    assert database.writes == 0


async def test_without_an_http_client_networks_do_not_apply_and_nothing_is_stored(
    bus: CommandBus, database: FakeDatabase
) -> None:
    fields = {"source_id": 7, "email": "a@b.co"}
    assert await refusal(bus, command(fields, None)) == ("invalid_source_key", "required")
    await bus.execute(command({**fields, "source_key": KEY}, None))
    (lead,) = database.leads.values()
    assert (lead.client_ip, lead.user_agent) == (None, None)


async def test_an_http_client_of_unknown_address_is_refused_by_networks_only(
    bus: CommandBus,
) -> None:
    unknown = HttpClient.from_request(None, (), None, ())
    fields = {"source_key": KEY, "email": "a@b.co"}
    assert await refusal(bus, command(fields, unknown)) == ("client_not_allowed", None)
    assert not (await bus.execute(command({"source_id": 8, "email": "a@b.co"}, unknown))).replayed


def test_the_http_client_resolves_its_address_and_sanitizes_its_user_agent() -> None:
    proxies = parse_networks(["10.0.0.0/8"])
    client = HttpClient.from_request(
        "10.0.0.1", ["198.51.100.1, 203.0.113.7"], "a\x00" + "b" * 2000, proxies
    )
    assert client.address == ip_address("203.0.113.7")
    assert client.user_agent == "a\ufffd" + "b" * (MAX_USER_AGENT_CHARS - 2)
    untrusted = HttpClient.from_request("203.0.113.9", ["198.51.100.1"], None, proxies)
    assert (untrusted.address, untrusted.user_agent) == (ip_address("203.0.113.9"), None)
