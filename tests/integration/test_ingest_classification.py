"""POST /api/leads: classification by source_id, source_key and HTTP mapping (SPEC §5)."""

from __future__ import annotations

import httpx
import pytest

from tests.partitioned_leads import LEADS_LAYOUTS
from tests.support import Catalog, unique_host

# Against the plain and the hash-partitioned `leads` (tests/partitioned_leads.py).
pytestmark = LEADS_LAYOUTS


def _lead(**fields: object) -> dict[str, object]:
    return {"email": "someone@example.com", **fields}


async def _post(
    client: httpx.AsyncClient, body: dict[str, object], **kwargs: object
) -> httpx.Response:
    return await client.post("/api/leads", json=body, **kwargs)  # type: ignore[arg-type]


async def test_source_id_binds_source_offer_market_and_vertical(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    response = await _post(client, _lead(source_id=source.source_id))
    assert response.status_code == 201
    body = response.json()
    assert (body["source_id"], body["offer_id"], body["market_id"], body["vertical_id"]) == (
        source.source_id,
        source.offer_id,
        source.market_id,
        source.vertical_id,
    )


@pytest.mark.parametrize("as_string", [False, True])
async def test_source_id_as_integer_or_digit_string(
    client: httpx.AsyncClient, catalog: Catalog, as_string: bool
) -> None:
    source = await catalog.source()
    value: object = str(source.source_id) if as_string else source.source_id
    response = await _post(client, _lead(source_id=value))
    assert response.status_code == 201
    assert response.json()["source_id"] == source.source_id


async def test_priority_source_id_over_key_over_mapping(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    by_id, by_key, by_host = [await catalog.source() for _ in range(3)]
    host = unique_host()
    await catalog.mapping(by_host.source_id, host)
    response = await _post(client, _lead(source_id=by_id.source_id), headers={"Host": host})
    assert response.json()["source_id"] == by_id.source_id
    response = await _post(client, _lead(source_key=by_key.source_key), headers={"Host": host})
    assert response.json()["source_id"] == by_key.source_id
    response = await _post(client, _lead(), headers={"Host": host})
    assert response.json()["source_id"] == by_host.source_id


async def test_source_id_with_its_own_key_is_accepted(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    assert source.source_key is not None
    body = _lead(source_id=source.source_id, source_key=f"  {source.source_key.upper()} ")
    response = await _post(client, body)
    assert response.status_code == 201


@pytest.mark.parametrize("other_key", ["someone-elses-key", "Not A Key!"])
async def test_source_id_with_a_conflicting_key(
    client: httpx.AsyncClient, catalog: Catalog, other_key: str
) -> None:
    source = await catalog.source()
    response = await _post(client, _lead(source_id=source.source_id, source_key=other_key))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_source_key"
    assert error["details"]["reason"] == "conflicts_with_source_id"
    assert other_key not in response.text


@pytest.mark.parametrize("posted_key", ["anything", "Not A Key!", 7, ["x"], True])
async def test_key_given_to_a_source_without_key_conflicts(
    client: httpx.AsyncClient, catalog: Catalog, posted_key: object
) -> None:
    source = await catalog.source(key=None)
    response = await _post(client, _lead(source_id=source.source_id, source_key=posted_key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_source_key"
    assert response.json()["error"]["details"]["reason"] == "conflicts_with_source_id"


@pytest.mark.parametrize("value", [0, -1, 2**63, "12a", "1.0", 1.5, True, "٣", {"id": 1}, [1]])
async def test_malformed_source_id(client: httpx.AsyncClient, value: object) -> None:
    response = await _post(client, _lead(source_id=value))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_source"


async def test_unknown_source_id(client: httpx.AsyncClient) -> None:
    response = await _post(client, _lead(source_id=2**63 - 1))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_source"


async def test_inactive_source_and_inactive_offer_are_not_found(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    inactive = await catalog.source(active=False)
    offer = await catalog.offer(active=False)
    of_inactive_offer = await catalog.source(offer_id=offer)
    for source in (inactive, of_inactive_offer):
        response = await _post(client, _lead(source_id=source.source_id))
        assert response.json()["error"]["code"] == "invalid_source"
        response = await _post(client, _lead(source_key=source.source_key))
        assert response.json()["error"]["code"] == "invalid_source_key"
        assert response.json()["error"]["details"]["reason"] == "not_found"


@pytest.mark.parametrize(
    "variant",
    [
        "{key}",
        "  {key}  ",
        "\t{key}\n",
        "\u00a0{key}\u00a0",
        "{upper}",
        "{fullwidth}",
    ],
)
async def test_source_key_variants_resolve(
    client: httpx.AsyncClient, catalog: Catalog, variant: str
) -> None:
    source = await catalog.source()
    key = source.source_key
    assert key is not None
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in key.upper())
    posted = variant.format(key=key, upper=key.upper(), fullwidth=fullwidth)
    response = await _post(client, _lead(source_key=posted))
    assert response.status_code == 201, response.text
    assert response.json()["source_id"] == source.source_id


@pytest.mark.parametrize(
    ("posted", "reason"),
    [("bad key", "malformed"), ("-x", "malformed"), ("no-such-key-anywhere", "not_found")],
)
async def test_source_key_errors_never_echo_the_key(
    client: httpx.AsyncClient, posted: str, reason: str
) -> None:
    response = await _post(client, _lead(source_key=posted))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_source_key",
        "message": response.json()["error"]["message"],
        "details": {"reason": reason},
    }
    assert posted not in response.text


async def test_source_key_in_the_query_string(client: httpx.AsyncClient, catalog: Catalog) -> None:
    source = await catalog.source()
    response = await client.post(
        "/api/leads", params={"source_key": source.source_key}, json=_lead()
    )
    assert response.status_code == 201
    assert response.json()["source_id"] == source.source_id


@pytest.mark.parametrize(
    "host_header", ["{host}", "{host}:8000", "{HOST}", "{host}.", " {host} ", "{HOST}.:443"]
)
async def test_host_variants_map(
    client: httpx.AsyncClient, catalog: Catalog, host_header: str
) -> None:
    source = await catalog.source()
    host = unique_host()
    await catalog.mapping(source.source_id, host)
    response = await _post(
        client, _lead(), headers={"Host": host_header.format(host=host, HOST=host.upper())}
    )
    assert response.status_code == 201, response.text
    assert response.json()["source_id"] == source.source_id


async def test_unicode_host_maps_to_its_punycode(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    label = unique_host().split(".")[0]
    await catalog.mapping(source.source_id, f"xn--bcher-kva.{label}.example")
    # A Unicode host name travels as its UTF-8 bytes.
    host = f"bücher.{label}.example".encode()
    response = await _post(client, _lead(), headers={"Host": host})
    assert response.status_code == 201, response.text
    upper = await _post(client, _lead(), headers={"Host": f"XN--BCHER-KVA.{label}.EXAMPLE"})
    assert upper.json()["source_id"] == source.source_id


async def test_longest_prefix_wins_on_a_segment_boundary(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    root, partner, partner_sub = [await catalog.source() for _ in range(3)]
    host = unique_host()
    await catalog.mapping(root.source_id, host, "/")
    await catalog.mapping(partner.source_id, host, "/api/leads/a")
    await catalog.mapping(partner_sub.source_id, host, "/api/leads/a/b")
    expectations = {
        "/api/leads": root,
        "/api/leads/a": partner,
        "/api/leads/a/": partner,
        "/api/leads/ab": root,
        "/api/leads/a/c/d": partner,
        "/api/leads/a/b": partner_sub,
        "/api/leads/a/b/c": partner_sub,
        "/api/leads//a///b/": partner_sub,
        "/api/leads/a/./b": partner_sub,
        "/api/leads/x/../a": partner,
    }
    for number, (path, expected) in enumerate(expectations.items()):
        body = _lead(idempotency_key=f"k{number}")
        response = await client.post(path, json=body, headers={"Host": host})
        assert response.status_code == 201, (path, response.text)
        assert response.json()["source_id"] == expected.source_id, path


async def test_mapping_paths_are_case_sensitive(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    host = unique_host()
    await catalog.mapping(source.source_id, host, "/api/leads/Partner")
    response = await client.post("/api/leads/partner", json=_lead(), headers={"Host": host})
    assert response.json()["error"]["code"] == "unmapped_source"
    response = await client.post("/api/leads/Partner", json=_lead(), headers={"Host": host})
    assert response.status_code == 201


async def test_inactive_mapping_source_or_offer_is_unmapped(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    host_a, host_b, host_c = unique_host(), unique_host(), unique_host()
    source = await catalog.source()
    await catalog.mapping(source.source_id, host_a, active=False)
    inactive_source = await catalog.source(active=False)
    await catalog.mapping(inactive_source.source_id, host_b)
    inactive_offer = await catalog.source(offer_id=await catalog.offer(active=False))
    await catalog.mapping(inactive_offer.source_id, host_c)
    for host in (host_a, host_b, host_c):
        response = await _post(client, _lead(), headers={"Host": host})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unmapped_source"


async def test_unmapped_host_and_path(client: httpx.AsyncClient, catalog: Catalog) -> None:
    source = await catalog.source()
    host = unique_host()
    await catalog.mapping(source.source_id, host, "/api/leads/only-here")
    for headers, path in (({"Host": unique_host()}, "/api/leads"), ({"Host": host}, "/api/leads")):
        response = await client.post(path, json=_lead(), headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unmapped_source"


async def test_tie_on_the_longest_prefix_is_409_with_sorted_ids(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    sources = [await catalog.source() for _ in range(3)]
    host = unique_host()
    await catalog.mapping(sources[0].source_id, host, "/")
    for source in reversed(sources[1:]):
        await catalog.mapping(source.source_id, host, "/api/leads/shared")
    response = await client.post("/api/leads/shared/x", json=_lead(), headers={"Host": host})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "ambiguous_source_mapping"
    assert error["details"]["source_ids"] == sorted(s.source_id for s in sources[1:])
    # A shorter, unambiguous prefix still classifies.
    response = await client.post("/api/leads/other", json=_lead(), headers={"Host": host})
    assert response.json()["source_id"] == sources[0].source_id


async def test_forwarded_host_is_ignored_unless_trusted(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    source = await catalog.source()
    host = unique_host()
    await catalog.mapping(source.source_id, host)
    response = await _post(client, _lead(), headers={"X-Forwarded-Host": host})
    assert response.json()["error"]["code"] == "unmapped_source"


async def test_forwarded_host_is_used_when_trusted(settings: object, catalog: Catalog) -> None:
    from infrastructure.settings import Settings
    from web.app import create_app

    assert isinstance(settings, Settings)
    trusted = settings.model_copy(update={"trust_forwarded_host": True})
    app = create_app(lambda: trusted)
    source = await catalog.source()
    host = unique_host()
    await catalog.mapping(source.source_id, host)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            response = await _post(
                client, _lead(), headers={"X-Forwarded-Host": f"{host}:8443, internal"}
            )
    assert response.status_code == 201
    assert response.json()["source_id"] == source.source_id
