"""Publisher intake over HTTP: required keys, allowed networks behind trusted proxies, field
aliases, and the client address and User-Agent stored with each lead."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import handlers.ingest_lead
from cli.main import main
from domain.client_address import parse_networks
from domain.intake import keys_match
from infrastructure.settings import Settings
from tests.integration.test_round_trips import RoundTrips, _settled, round_trips
from tests.support import Catalog, running_service, unique_host
from web.app import create_app

__all__ = ["round_trips"]  # a fixture, used below

# The test client's address unless a test says otherwise (httpx's ASGI transport default).
LOCAL = ("127.0.0.1", 123)
PUBLISHER = ("203.0.113.7", 4711)
PUBLISHER_NETWORK = "203.0.113.0/24"
STRANGER = ("198.51.100.7", 4711)
TRUSTED_PROXIES = ("10.0.0.0/8", "fd00::/8")
NOT_ALLOWED = {
    "error": {
        "code": "client_not_allowed",
        "message": "This source does not accept leads from the address this request came from.",
        "details": {},
    }
}


async def post(
    app: Any,
    body: Mapping[str, object],
    *,
    peer: tuple[str, int] | None = LOCAL,
    headers: Any = None,
    path: str = "/api/leads",
    user_agent: bool = True,
) -> httpx.Response:
    """POST a JSON lead to `app` from the TCP peer `peer` (None: no peer, as on a Unix socket);
    without `user_agent`, no User-Agent header at all (httpx sends its own by default)."""
    transport = httpx.ASGITransport(app=app, client=peer)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        if not user_agent:
            del client.headers["User-Agent"]
        return await client.post(path, json=body, headers=headers)


async def stored(engine: AsyncEngine, lead_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT host(client_ip) AS client_ip, family(client_ip) AS family, "
                    "masklen(client_ip) AS masklen, user_agent, email, first_name, last_name, "
                    "postal_code, is_test, attributes FROM leads WHERE lead_id = :id"
                ),
                {"id": lead_id},
            )
        ).one()
    return dict(row._mapping)


async def lead_count(engine: AsyncEngine, source_id: int) -> int:
    async with engine.connect() as connection:
        count: int = (
            await connection.execute(
                text("SELECT count(*) FROM leads WHERE source_id = :id"), {"id": source_id}
            )
        ).scalar_one()
    return count


def error_of(response: httpx.Response) -> tuple[int, str, object]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["details"].get("reason")


@pytest.fixture(scope="module")
async def proxied_app(settings: Settings) -> AsyncIterator[Any]:
    """The service behind trusted proxies (LEADS_TRUSTED_PROXIES=10.0.0.0/8,fd00::/8)."""
    proxied = settings.model_copy(update={"trusted_proxies": parse_networks(TRUSTED_PROXIES)})
    application = create_app(lambda: proxied)
    async with application.router.lifespan_context(application):
        yield application


# -- require_key -------------------------------------------------------------------------------


async def test_a_required_key_missing_with_source_id_is_refused(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.intake_source(require_key=True)
    for absent in ({}, {"source_key": None}, {"source_key": "  "}):
        body = {"source_id": source.source_id, "email": "req@x.co", **absent}
        response = await post(app, body)
        assert error_of(response) == (400, "invalid_source_key", "required")
        assert source.source_key not in response.text
    assert await lead_count(engine, source.source_id) == 0


async def test_a_required_key_missing_on_a_mapped_url_is_refused(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.intake_source(require_key=True)
    host = unique_host()
    await catalog.mapping(source.source_id, host, "/api/leads/acme")
    headers = {"Host": host}
    response = await post(app, {"email": "map@x.co"}, headers=headers, path="/api/leads/acme")
    assert error_of(response) == (400, "invalid_source_key", "required")
    # With the key in the body, or in the query string, the mapped URL takes the lead.
    body = {"email": "map@x.co", "source_key": source.source_key}
    response = await post(app, body, headers=headers, path="/api/leads/acme")
    assert response.status_code == 201
    assert response.json()["source_id"] == source.source_id
    query = f"/api/leads/acme?source_key={source.source_key}"
    response = await post(app, {"email": "map@x.co"}, headers=headers, path=query)
    assert response.status_code == 200  # the same lead: the key is not part of it
    assert await lead_count(engine, source.source_id) == 1


async def test_a_required_key_present_is_accepted_however_written(
    app: Any, catalog: Catalog
) -> None:
    source = await catalog.intake_source(require_key=True)
    assert source.source_key is not None
    written = f"  {source.source_key.upper()} "
    by_id = {"source_id": source.source_id, "source_key": written, "email": "ok@x.co"}
    response = await post(app, by_id)
    assert response.status_code == 201
    by_key = {"source_key": source.source_key, "email": "ok@x.co"}
    response = await post(app, by_key)
    assert response.status_code == 200
    assert response.json()["source_id"] == source.source_id


async def test_a_wrong_key_with_source_id_still_conflicts(app: Any, catalog: Catalog) -> None:
    source = await catalog.intake_source(require_key=True)
    other = await catalog.source()
    for wrong in ("not-its-key-at-all", other.source_key, "Not A Key!", 7):
        body = {"source_id": source.source_id, "source_key": wrong, "email": "w@x.co"}
        response = await post(app, body)
        assert error_of(response) == (400, "invalid_source_key", "conflicts_with_source_id")


async def test_another_sources_key_classifies_to_that_source(app: Any, catalog: Catalog) -> None:
    guarded = await catalog.intake_source(require_key=True)
    other = await catalog.source()
    host = unique_host()
    await catalog.mapping(guarded.source_id, host)
    # The key outranks the mapping, as always: the lead is the other source's.
    body = {"source_key": other.source_key, "email": "else@x.co"}
    response = await post(app, body, headers={"Host": host})
    assert response.status_code == 201
    assert response.json()["source_id"] == other.source_id


async def test_a_source_without_require_key_takes_leads_without_it(
    app: Any, catalog: Catalog
) -> None:
    source = await catalog.intake_source(require_key=False)
    response = await post(app, {"source_id": source.source_id, "email": "free@x.co"})
    assert response.status_code == 201


async def test_the_presented_key_is_compared_by_keys_match(
    app: Any, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = await catalog.intake_source(require_key=True)
    assert source.source_key is not None
    calls: list[tuple[str, str]] = []

    def spy(presented: str, expected: str) -> bool:
        calls.append((presented, expected))
        return keys_match(presented, expected)

    monkeypatch.setattr(handlers.ingest_lead, "keys_match", spy)
    body = {"source_id": source.source_id, "source_key": source.source_key.upper()}
    response = await post(app, {**body, "email": "spy@x.co"})
    assert response.status_code == 201
    assert calls == [(source.source_key, source.source_key)]

    # Its answer decides: a comparison that says "different" refuses even the right key.
    monkeypatch.setattr(handlers.ingest_lead, "keys_match", lambda presented, expected: False)
    response = await post(app, {**body, "email": "spy2@x.co"})
    assert error_of(response) == (400, "invalid_source_key", "conflicts_with_source_id")


async def test_twenty_concurrent_identical_posts_create_one_lead_for_a_required_key(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.intake_source(require_key=True, networks=[PUBLISHER_NETWORK])
    body = {"source_id": source.source_id, "source_key": source.source_key, "email": "r@x.co"}
    transport = httpx.ASGITransport(app=app, client=PUBLISHER)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(*(client.post("/api/leads", json=body) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert await lead_count(engine, source.source_id) == 1


# -- allowed_networks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("networks", "allowed", "refused"),
    [
        (["203.0.113.0/24"], "203.0.113.200", "203.0.114.1"),
        (["203.0.113.7"], "203.0.113.7", "203.0.113.8"),  # a bare address is a /32
        (["2001:db8:4400::/40"], "2001:db8:44ff::1", "2001:db8:4500::1"),
        (["2001:db8::7/128"], "2001:db8::7", "2001:db8::8"),
        # A dual-stack socket reports an IPv4 peer as IPv4-mapped IPv6: the IPv4 rule applies.
        (["203.0.113.0/24"], "::ffff:203.0.113.9", "::ffff:198.51.100.9"),
        # Either family in one list.
        (["198.51.100.0/24", "2001:db8::/32"], "2001:db8::1", "2001:db9::1"),
        (["198.51.100.0/24", "2001:db8::/32"], "198.51.100.1", "203.0.113.1"),
    ],
)
async def test_allowed_networks_take_their_addresses_and_refuse_others(
    app: Any,
    catalog: Catalog,
    engine: AsyncEngine,
    networks: list[str],
    allowed: str,
    refused: str,
) -> None:
    source = await catalog.intake_source(networks=networks)
    body = {"source_id": source.source_id, "email": "net@x.co"}
    response = await post(app, body, peer=(refused, 5000))
    assert response.status_code == 403
    assert response.json() == NOT_ALLOWED
    assert await lead_count(engine, source.source_id) == 0  # refused before any write
    response = await post(app, body, peer=(allowed, 5000))
    assert response.status_code == 201
    expected = allowed.removeprefix("::ffff:")
    assert (await stored(engine, response.json()["lead_id"]))["client_ip"] == expected


async def test_no_networks_means_any_address_even_an_unknown_one(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.intake_source()
    response = await post(app, {"source_id": source.source_id, "email": "any@x.co"}, peer=None)
    assert response.status_code == 201
    assert (await stored(engine, response.json()["lead_id"]))["client_ip"] is None


async def test_with_networks_an_unknown_client_address_is_refused(
    app: Any, catalog: Catalog
) -> None:
    source = await catalog.intake_source(networks=["0.0.0.0/0", "::/0"])
    body = {"source_id": source.source_id, "email": "unix@x.co"}
    assert (await post(app, body, peer=None)).json() == NOT_ALLOWED
    assert (await post(app, body, peer=("not-an-ip", 1))).json() == NOT_ALLOWED
    assert (await post(app, body, peer=LOCAL)).status_code == 201


async def test_the_key_is_checked_before_the_network(app: Any, catalog: Catalog) -> None:
    source = await catalog.intake_source(require_key=True, networks=[PUBLISHER_NETWORK])
    body = {"source_id": source.source_id, "email": "order@x.co"}
    response = await post(app, body, peer=STRANGER)
    assert error_of(response) == (400, "invalid_source_key", "required")
    response = await post(app, {**body, "source_key": source.source_key}, peer=STRANGER)
    assert response.json() == NOT_ALLOWED


async def test_a_network_refusal_gives_no_field_error_away(app: Any, catalog: Catalog) -> None:
    """A client outside the networks learns nothing of the source's aliases or field rules."""
    source = await catalog.intake_source(
        networks=[PUBLISHER_NETWORK], aliases={"zip": "postal_code"}
    )
    body = {"source_id": source.source_id, "zip": "1", "postal_code": "2", "email": "n@x.co"}
    assert (await post(app, body, peer=STRANGER)).json() == NOT_ALLOWED
    response = await post(app, body, peer=PUBLISHER)
    assert error_of(response) == (400, "invalid_request", "conflicting_values")


async def test_a_network_change_applies_to_the_next_post(app: Any, catalog: Catalog) -> None:
    source = await catalog.intake_source(networks=[PUBLISHER_NETWORK])
    body = {"source_id": source.source_id, "email": "change@x.co", "idempotency_key": "one"}
    assert (await post(app, body, peer=PUBLISHER)).status_code == 201  # cached now
    await catalog.execute(
        "UPDATE sources SET allowed_networks = '{198.51.100.0/24}' WHERE source_id = :id",
        id=source.source_id,
    )
    body["idempotency_key"] = "two"
    assert (await post(app, body, peer=PUBLISHER)).json() == NOT_ALLOWED
    assert (await post(app, body, peer=STRANGER)).status_code == 201


# -- the client address behind trusted proxies -------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client_ip"),
    [
        # No proxy: the peer is the client, and its X-Forwarded-For is not believed.
        ("203.0.113.7", [], "203.0.113.7"),
        ("203.0.113.7", ["198.51.100.9"], "203.0.113.7"),
        # One proxy: it appended the client's address.
        ("10.0.0.1", ["203.0.113.7"], "203.0.113.7"),
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        # Two proxies: the right-most entry that is not a trusted proxy, whatever the client
        # wrote to the left of it; in one header or in several.
        ("10.0.0.2", ["203.0.113.7, 10.0.0.1"], "203.0.113.7"),
        ("10.0.0.2", ["198.51.100.9, 203.0.113.7, 10.0.0.1"], "203.0.113.7"),
        ("10.0.0.2", ["198.51.100.9", "203.0.113.7", "10.0.0.1"], "203.0.113.7"),
        ("10.0.0.2", ["[2001:db8::7]:4711, 10.0.0.1:80"], "2001:db8::7"),
        # Malformed entries: the header is treated as absent (the peer), never a 500.
        ("10.0.0.1", ["203.0.113.7, not-an-address"], "10.0.0.1"),
        ("10.0.0.1", ["203.0.113.7,,"], "10.0.0.1"),
        ("10.0.0.1", ["unknown"], "10.0.0.1"),
        ("10.0.0.1", ["203.0.113.7:http"], "10.0.0.1"),
        ("10.0.0.1", ["203.0.113.300"], "10.0.0.1"),
        ("10.0.0.1", [" "], "10.0.0.1"),
        # Every hop a trusted proxy: the farthest one known.
        ("10.0.0.2", ["10.0.0.9, 10.0.0.1"], "10.0.0.9"),
    ],
)
async def test_the_client_address_behind_trusted_proxies(
    proxied_app: Any,
    catalog: Catalog,
    engine: AsyncEngine,
    peer: str,
    forwarded_for: list[str],
    client_ip: str,
) -> None:
    source = await catalog.intake_source()
    headers = [("X-Forwarded-For", value) for value in forwarded_for]
    body = {"source_id": source.source_id, "email": "proxy@x.co"}
    response = await post(proxied_app, body, peer=(peer, 5000), headers=headers)
    assert response.status_code == 201
    assert (await stored(engine, response.json()["lead_id"]))["client_ip"] == client_ip


async def test_behind_trusted_proxies_the_network_rule_sees_the_client(
    proxied_app: Any, catalog: Catalog
) -> None:
    source = await catalog.intake_source(networks=[PUBLISHER_NETWORK])
    body = {"source_id": source.source_id, "email": "behind@x.co"}
    via_proxy = {"X-Forwarded-For": "203.0.113.7"}
    assert (await post(proxied_app, body, peer=("10.0.0.1", 1), headers=via_proxy)).is_success
    # The proxy's own address is not the publisher's; nor is a stranger behind the proxy.
    assert (await post(proxied_app, body, peer=("10.0.0.1", 1))).json() == NOT_ALLOWED
    stranger = {"X-Forwarded-For": "203.0.113.7, 198.51.100.7"}
    response = await post(proxied_app, body, peer=("10.0.0.1", 1), headers=stranger)
    assert response.json() == NOT_ALLOWED


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    app: Any, proxied_app: Any, catalog: Catalog
) -> None:
    source = await catalog.intake_source(networks=[PUBLISHER_NETWORK])
    body = {"source_id": source.source_id, "email": "spoof@x.co"}
    spoofed = {"X-Forwarded-For": "203.0.113.7"}
    # No trusted proxies at all (the default), and a peer that is not one of them.
    assert (await post(app, body, peer=STRANGER, headers=spoofed)).json() == NOT_ALLOWED
    assert (await post(proxied_app, body, peer=STRANGER, headers=spoofed)).json() == NOT_ALLOWED


# -- field aliases -----------------------------------------------------------------------------

ALIASES = {
    "fname": "first_name",
    "lname": "last_name",
    "email_address": "email",
    "zip": "postal_code",
    "test_lead": "is_test",
}


async def test_aliases_rename_fields_in_any_case_and_keep_the_derived_key(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.intake_source(aliases=ALIASES)
    aliased = {
        "source_id": source.source_id,
        "FName": "Jane",
        "LNAME": "Doe",
        "Email_Address": "Jane@Example.com",
        "zip": 94105,
        "Test_Lead": "1",
        "campaign": "spring",
    }
    response = await post(app, aliased)
    assert response.status_code == 201
    created = response.json()
    assert created["idempotency_key_origin"] == "derived"
    row = await stored(engine, created["lead_id"])
    assert {k: row[k] for k in ("first_name", "last_name", "email", "postal_code")} == {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "Jane@Example.com",
        "postal_code": "94105",
    }
    assert row["is_test"] is True
    assert row["attributes"] == {"campaign": "spring"}
    # The same lead in our names is the same lead: one derived key, one lead_id.
    canonical = {
        "source_id": source.source_id,
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.com",
        "postal_code": "94105",
        "is_test": True,
        "campaign": "spring",
    }
    response = await post(app, canonical)
    assert response.status_code == 200
    assert response.json() == {**created, "replayed": True}
    assert await lead_count(engine, source.source_id) == 1


async def test_an_alias_and_its_field_must_agree(app: Any, catalog: Catalog) -> None:
    source = await catalog.intake_source(aliases=ALIASES)
    base = {"source_id": source.source_id, "email": "agree@x.co"}
    for conflicting in (
        {"zip": "94105", "postal_code": "10001"},
        {"ZIP": "94105", "Postal_Code": "10001"},
        {"zip": 94105, "postal_code": "94105"},  # a number and a string are two values
        {"fname": "Jane", "FNAME": "Joan"},
        {"email_address": "other@x.co"},  # against `email` of the base
    ):
        response = await post(app, {**base, **conflicting})
        assert error_of(response) == (400, "invalid_request", "conflicting_values"), conflicting
    response = await post(app, {**base, "zip": "94105", "Postal_Code": "94105"})
    assert response.status_code == 201


async def test_aliases_are_the_sources_own(app: Any, catalog: Catalog, engine: AsyncEngine) -> None:
    """Another source's lead keeps a publisher's name as an attribute, as posted."""
    await catalog.intake_source(aliases=ALIASES)
    plain = await catalog.intake_source()
    response = await post(app, {"source_id": plain.source_id, "fname": "Jane", "email": "p@x.co"})
    assert response.status_code == 201
    row = await stored(engine, response.json()["lead_id"])
    assert (row["first_name"], row["attributes"]) == (None, {"fname": "Jane"})


async def test_aliases_follow_the_field_rules(app: Any, catalog: Catalog) -> None:
    source = await catalog.intake_source(aliases=ALIASES)
    base = {"source_id": source.source_id, "email": "rules@x.co"}
    for field, value, reason in (
        ("fname", 5, "wrong_type"),
        ("fname", "x" * 201, "too_long"),
        ("test_lead", "maybe", "wrong_type"),
    ):
        response = await post(app, {**base, field: value})
        assert error_of(response) == (400, "invalid_request", reason), field


async def test_stored_aliases_the_catalog_would_refuse_never_apply(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    """Written with plain SQL: a selector as target, a known field as alias, an unknown target,
    a name not stored folded. Each posted name stays what it is without aliases."""
    source = await catalog.intake_source(
        aliases={"sid": "source_id", "email": "phone", "nick": "nickname", "ZIP": "postal_code"},
    )
    body = {"source_id": source.source_id, "sid": "1", "email": "e@x.co", "nick": "J", "ZIP": "9"}
    response = await post(app, body)
    assert response.status_code == 201
    row = await stored(engine, response.json()["lead_id"])
    assert row["email"] == "e@x.co"
    assert row["postal_code"] is None
    assert row["attributes"] == {"sid": "1", "nick": "J", "ZIP": "9"}


async def test_aliases_applied_from_a_catalog_file_work_and_selectors_are_refused(
    app: Any,
    catalog: Catalog,
    engine: AsyncEngine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    code = f"t{uuid.uuid4().hex[:10]}"
    key = f"{code}-0123456789"
    entries = (
        f"markets: [{{code: {code}, name: M, phone_region: US}}]\n"
        f"verticals: [{{code: {code}, name: V}}]\n"
        f"offers: [{{code: {code}, name: O, market: {code}, vertical: {code}}}]\n"
        f"sources: [{{code: {code}, name: S, offer: {code}, source_key: {key},"
        f" require_key: true, field_aliases: {{Given_Name: first_name, {{alias}}}}}}]\n"
    )
    refused = tmp_path / "refused.yaml"
    for target in ("source_id", "source_key", "idempotency_key", "nickname"):
        refused.write_text(entries.replace("{alias}", f"x: {target}"), encoding="utf-8")
        status = await asyncio.to_thread(main, ["catalog", "apply", str(refused)])
        assert status == 2
        assert "field_aliases" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(entries.replace("{alias}", "PostCode: postal_code"), encoding="utf-8")
    assert await asyncio.to_thread(main, ["catalog", "apply", str(good)]) == 0
    capsys.readouterr()

    body = {"source_key": key, "given_name": "Ann", "POSTCODE": "02134", "email": "a@x.co"}
    response = await post(app, body)
    assert response.status_code == 201
    row = await stored(engine, response.json()["lead_id"])
    assert (row["first_name"], row["postal_code"], row["attributes"]) == ("Ann", "02134", {})


# -- client_ip and user_agent ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"),
        (b"a\x00b\x01c\td\x1fe\x7ff", "a\ufffdb\ufffdc\ufffdd\ufffde\x7ff"),
        ("Büro-Client/1.0".encode(), "Büro-Client/1.0"),
        (b"caf\xe9", "caf\xe9"),  # not UTF-8: kept as the latin-1 text it arrived as
        (b"x" * 5000, "x" * 1024),
        (b"\x00" * 2000, "\ufffd" * 1024),
        (b"", ""),
    ],
)
async def test_the_user_agent_is_stored_cut_and_made_storable(
    app: Any, catalog: Catalog, engine: AsyncEngine, sent: bytes, kept: str
) -> None:
    source = await catalog.intake_source()
    body = {"source_id": source.source_id, "email": "ua@x.co"}
    response = await post(app, body, headers=[(b"user-agent", sent)])
    assert response.status_code == 201
    assert (await stored(engine, response.json()["lead_id"]))["user_agent"] == kept


async def test_client_context_is_stored_but_in_neither_key_nor_response(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.intake_source()
    body = {"source_id": source.source_id, "email": "ctx@x.co"}
    first = await post(app, body, peer=PUBLISHER, headers={"User-Agent": "first/1"})
    assert first.status_code == 201
    assert list(first.json()) == [
        "lead_id",
        "source_id",
        "offer_id",
        "market_id",
        "vertical_id",
        "idempotency_key",
        "idempotency_key_origin",
        "status",
        "replayed",
    ]
    row = await stored(engine, first.json()["lead_id"])
    assert (row["client_ip"], row["family"], row["masklen"]) == ("203.0.113.7", 4, 32)
    assert row["user_agent"] == "first/1"
    # Another client posting the same lead: the same derived key, a replay, the same bytes.
    replays = [
        await post(app, body, peer=peer, headers=headers)
        for peer, headers in ((PUBLISHER, {"User-Agent": "first/1"}), (STRANGER, None))
    ]
    assert {r.status_code for r in replays} == {200}
    assert replays[0].content == replays[1].content
    assert json.loads(replays[0].content) == {**first.json(), "replayed": True}
    row = await stored(engine, first.json()["lead_id"])
    assert (row["client_ip"], row["user_agent"]) == ("203.0.113.7", "first/1")
    no_agent = await post(
        app, {**body, "email": "none@x.co"}, peer=("2001:db8::1", 1), user_agent=False
    )
    row = await stored(engine, no_agent.json()["lead_id"])
    assert (row["client_ip"], row["family"], row["masklen"], row["user_agent"]) == (
        "2001:db8::1",
        6,
        128,
        None,
    )


async def test_the_immutability_trigger_covers_client_ip_and_user_agent(
    app: Any, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.intake_source()
    body = {"source_id": source.source_id, "email": "imm@x.co"}
    response = await post(app, body, headers={"User-Agent": "ua/1"})
    lead_id = response.json()["lead_id"]
    for change in (
        "client_ip = '198.51.100.1'",
        "client_ip = NULL",
        "user_agent = 'other'",
        "user_agent = NULL",
    ):
        with pytest.raises(DBAPIError, match="cannot change"):
            await catalog.execute(f"UPDATE leads SET {change} WHERE lead_id = :id", id=lead_id)
    await catalog.execute("UPDATE leads SET status = 'sold' WHERE lead_id = :id", id=lead_id)
    row = await stored(engine, lead_id)
    assert (row["client_ip"], row["user_agent"]) == ("127.0.0.1", "ua/1")


# -- round trips -------------------------------------------------------------------------------


async def test_a_source_using_every_rule_still_writes_a_new_lead_in_one_statement(
    app: Any, catalog: Catalog, round_trips: RoundTrips
) -> None:
    source = await catalog.intake_source(
        require_key=True, networks=["127.0.0.0/8"], aliases=ALIASES
    )
    body = {"source_id": source.source_id, "source_key": source.source_key, "zip": "94105"}
    transport = httpx.ASGITransport(app=app, client=LOCAL)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for warm in range(3):  # statement caches of the pooled connections, the catalog cache
            await client.post("/api/leads", json={**body, "email": f"warm{warm}@x.co"})
        await _settled(round_trips)
        response = await client.post("/api/leads", json={**body, "email": "rt@x.co"})
        assert response.status_code == 201
        assert await _settled(round_trips) == ["WITH"]
        response = await client.post("/api/leads", json={**body, "email": "rt@x.co"})
        assert response.status_code == 200
        assert await _settled(round_trips) == ["WITH", "SELECT"]
        # A refusal from cached answers is confirmed by one read, and writes nothing.
        response = await client.post("/api/leads", json={"source_id": source.source_id})
        assert error_of(response) == (400, "invalid_source_key", "required")
        assert await _settled(round_trips) == ["SELECT"]


# -- over a real socket ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "network", "other"),
    [("127.0.0.1", "127.0.0.1/32", "::1/128"), ("::1", "::1/128", "127.0.0.0/8")],
)
async def test_a_real_connection_is_checked_and_stored_by_its_peer_address(
    catalog: Catalog,
    engine: AsyncEngine,
    database_url: str,
    host: str,
    network: str,
    other: str,
) -> None:
    allowed = await catalog.intake_source(networks=[network])
    elsewhere = await catalog.intake_source(networks=[other])
    with running_service(database_url, host=host) as service:
        base_url = service.base_url
        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.post(
                "/api/leads",
                json={"source_id": allowed.source_id, "email": "sock@x.co"},
                headers={"User-Agent": "socket-test/1"},
            )
            refused = await client.post(
                "/api/leads", json={"source_id": elsewhere.source_id, "email": "sock@x.co"}
            )
    assert response.status_code == 201
    row = await stored(engine, response.json()["lead_id"])
    assert (row["client_ip"], row["user_agent"]) == (host, "socket-test/1")
    assert refused.status_code == 403
    assert refused.json() == NOT_ALLOWED
