"""Catalog commands (apply, through the real bus) and queries (export, check, describe) on
PostgreSQL.

Every test uses codes, keys and hostnames of its own; `check` and whole-catalog round trips
run on databases of their own (the shared one holds other tests' deliberate ambiguities).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.catalog import ApplyCatalog
from domain.catalog import CatalogEntryNotFound, CatalogError
from handlers.bus import CommandBus
from infrastructure import migrate
from infrastructure.catalog_repository import SqlCatalogRepository
from infrastructure.container import Application, bootstrap
from infrastructure.settings import Settings
from queries.catalog import CheckCatalog, DescribeSource, ExportCatalog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture
async def application(settings: Settings) -> AsyncIterator[Application]:
    application = bootstrap(settings)
    yield application
    await application.close()


@pytest.fixture
def bus(application: Application) -> CommandBus:
    return application.bus


def catalog_document(tag: str, **overrides: Any) -> dict[str, Any]:
    """Two markets, one vertical, two offers, a keyed source and its mapping, all tagged."""
    document: dict[str, Any] = {
        "markets": [
            {"code": f"us-{tag}", "name": "United States", "phone_region": "us"},
            {"code": f"gb-{tag}", "name": "United Kingdom", "phone_region": "GB"},
        ],
        "verticals": [{"code": f"solar-{tag}", "name": "Solar"}],
        "offers": [
            {"code": f"us-solar-{tag}", "name": "US solar", "market": f"us-{tag}",
             "vertical": f"solar-{tag}"},
            {"code": f"gb-solar-{tag}", "name": "UK solar", "market": f"gb-{tag}",
             "vertical": f"solar-{tag}"},
        ],
        "sources": [
            {"code": f"acme-{tag}", "name": "Acme", "offer": f"us-solar-{tag}",
             "source_key": f"  ACME-{tag}  "},
        ],
        "mappings": [
            {"source": f"acme-{tag}", "hostname": f"Leads-{tag}.Example.COM:8443",
             "path_prefix": "api//leads/acme/./"},
        ],
    }  # fmt: skip
    document.update(overrides)
    return document


def tag() -> str:
    return uuid.uuid4().hex[:10]


async def rows(engine: AsyncEngine, tag: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every catalog row carrying `tag`, with xmin: a rewritten row gets a new one."""
    like = {"pattern": f"%{tag}%"}
    queries = {
        "markets": "SELECT code, name, phone_region, xmin::text FROM markets WHERE code LIKE "
        ":pattern ORDER BY code",
        "verticals": "SELECT code, name, xmin::text FROM verticals WHERE code LIKE :pattern "
        "ORDER BY code",
        "offers": "SELECT o.code, o.name, m.code, o.is_active, o.xmin::text FROM offers o "
        "JOIN markets m USING (market_id) WHERE o.code LIKE :pattern ORDER BY o.code",
        "sources": "SELECT s.code, s.name, o.code, s.source_key, s.is_active, s.xmin::text "
        "FROM sources s JOIN offers o USING (offer_id) WHERE s.code LIKE :pattern "
        "ORDER BY s.code",
        "mappings": "SELECT s.code, mp.hostname, mp.path_prefix, mp.is_active, mp.xmin::text "
        "FROM source_http_mappings mp JOIN sources s USING (source_id) "
        "WHERE s.code LIKE :pattern ORDER BY 1, 2, 3",
    }
    async with engine.connect() as connection:
        return {
            name: [tuple(row) for row in await connection.execute(text(sql), like)]
            for name, sql in queries.items()
        }


def without_xmin(state: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [row[:-1] for row in table] for name, table in state.items()}


async def test_apply_creates_canonical_rows_that_classify_leads(
    bus: CommandBus, engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    t = tag()
    applied = await bus.execute(ApplyCatalog(catalog_document(t)))
    assert (applied.plan.count("create"), applied.plan.count("update")) == (7, 0)
    assert not applied.dry_run
    state = without_xmin(await rows(engine, t))
    assert state["markets"] == [
        (f"gb-{t}", "United Kingdom", "GB"),
        (f"us-{t}", "United States", "US"),
    ]
    assert state["sources"] == [(f"acme-{t}", "Acme", f"us-solar-{t}", f"acme-{t}", True)]
    assert state["mappings"] == [(f"acme-{t}", f"leads-{t}.example.com", "/api/leads/acme", True)]

    # What the catalog stored is what classification compares with.
    host = f"LEADS-{t}.example.com."
    response = await client.post(
        "/api/leads/acme/123", json={"email": "a@example.com"}, headers={"Host": host}
    )
    assert response.status_code == 201, response.text
    by_key = await client.post(
        "/api/leads", json={"email": "b@example.com", "source_key": f"Acme-{t}"}
    )
    assert by_key.json()["source_id"] == response.json()["source_id"]


async def test_applying_the_same_document_twice_changes_nothing(
    bus: CommandBus, engine: AsyncEngine
) -> None:
    t = tag()
    await bus.execute(ApplyCatalog(catalog_document(t)))
    before = await rows(engine, t)
    again = await bus.execute(ApplyCatalog(catalog_document(t)))
    assert (again.plan.count("create"), again.plan.count("update")) == (0, 0)
    assert again.plan.count("unchanged") == 7
    assert await rows(engine, t) == before  # same xmin: no row was even rewritten


async def test_apply_updates_renames_moves_and_deactivates(
    bus: CommandBus, engine: AsyncEngine
) -> None:
    t = tag()
    await bus.execute(ApplyCatalog(catalog_document(t)))
    changed = catalog_document(
        t,
        sources=[
            {"code": f"acme-{t}", "name": "Acme Media", "offer": f"gb-solar-{t}",
             "source_key": f"acme2-{t}"},
        ],
        mappings=[
            {"source": f"acme-{t}", "hostname": f"leads-{t}.example.com",
             "path_prefix": "/api/leads/acme", "active": False},
        ],
    )  # fmt: skip
    changed["offers"][0]["active"] = False
    applied = await bus.execute(ApplyCatalog(changed))
    updated = {(c.kind, c.changed_fields) for c in applied.plan.changes if c.action == "update"}
    assert updated == {
        ("offer", ("active",)),
        ("source", ("name", "offer", "source_key")),
        ("mapping", ("active",)),
    }
    state = without_xmin(await rows(engine, t))
    assert state["sources"] == [(f"acme-{t}", "Acme Media", f"gb-solar-{t}", f"acme2-{t}", True)]
    assert state["offers"][1] == (f"us-solar-{t}", "US solar", f"us-{t}", False)
    assert state["mappings"][0][3] is False


async def test_a_document_that_leaves_entries_out_leaves_them_alone(
    bus: CommandBus, engine: AsyncEngine
) -> None:
    t = tag()
    await bus.execute(ApplyCatalog(catalog_document(t)))
    before = await rows(engine, t)
    applied = await bus.execute(ApplyCatalog({"markets": [{"code": f"us-{t}", "name": "USA"}]}))
    assert [(c.action, c.changed_fields) for c in applied.plan.changes] == [("update", ("name",))]
    after = await rows(engine, t)
    assert after["markets"][1][:3] == (f"us-{t}", "USA", "US")  # phone_region kept
    assert {k: v for k, v in after.items() if k != "markets"} == {
        k: v for k, v in before.items() if k != "markets"
    }


async def test_source_keys_can_swap_in_one_apply(bus: CommandBus, engine: AsyncEngine) -> None:
    t = tag()
    offer = f"us-solar-{t}"
    first = catalog_document(
        t,
        sources=[
            {"code": f"a-{t}", "name": "A", "offer": offer, "source_key": f"k1-{t}"},
            {"code": f"b-{t}", "name": "B", "offer": offer, "source_key": f"k2-{t}"},
        ],
        mappings=[],
    )
    await bus.execute(ApplyCatalog(first))
    first["sources"][0]["source_key"], first["sources"][1]["source_key"] = f"k2-{t}", f"k1-{t}"
    await bus.execute(ApplyCatalog(first))
    keys = [(row[0], row[3]) for row in (await rows(engine, t))["sources"]]
    assert keys == [(f"a-{t}", f"k2-{t}"), (f"b-{t}", f"k1-{t}")]


async def test_an_invalid_entry_fails_the_whole_apply(bus: CommandBus, engine: AsyncEngine) -> None:
    t = tag()
    document = catalog_document(t)
    document["mappings"].append({"source": f"nobody-{t}", "hostname": "h.example"})
    with pytest.raises(CatalogError) as caught:
        await bus.execute(ApplyCatalog(document))
    assert caught.value.entry == f'mappings #2 "nobody-{t}"'
    assert caught.value.field == "source"
    assert all(table == [] for table in (await rows(engine, t)).values())


async def test_a_failure_while_writing_rolls_everything_back(
    bus: CommandBus, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = tag()

    async def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SqlCatalogRepository, "save_mapping", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await bus.execute(ApplyCatalog(catalog_document(t)))
    assert all(table == [] for table in (await rows(engine, t)).values())


async def test_a_dry_run_plans_and_writes_nothing(bus: CommandBus, engine: AsyncEngine) -> None:
    t = tag()
    applied = await bus.execute(ApplyCatalog(catalog_document(t), dry_run=True))
    assert applied.dry_run
    assert applied.plan.count("create") == 7
    assert all(table == [] for table in (await rows(engine, t)).values())

    await bus.execute(ApplyCatalog(catalog_document(t)))
    before = await rows(engine, t)
    changed = catalog_document(t)
    changed["verticals"][0]["name"] = "Solar panels"
    applied = await bus.execute(ApplyCatalog(changed, dry_run=True))
    assert [c.subject for c in applied.plan.changes if c.action == "update"] == [f"solar-{t}"]
    assert await rows(engine, t) == before


async def test_describe_source(application: Application) -> None:
    t = tag()
    await application.bus.execute(ApplyCatalog(catalog_document(t)))
    description = await application.query(DescribeSource(f"acme-{t}"))
    assert description.source.source_key == f"acme-{t}"
    assert description.market.phone_region == "US"
    assert [m.hostname + m.path_prefix for m in description.mappings] == [
        f"leads-{t}.example.com/api/leads/acme"
    ]
    with pytest.raises(CatalogEntryNotFound):
        await application.query(DescribeSource(f"nobody-{t}"))


def test_export_then_apply_is_a_no_op_on_a_database_of_its_own(new_database) -> None:  # type: ignore[no-untyped-def]
    url = new_database()
    asyncio.run(migrate.upgrade(url))
    asyncio.run(_export_round_trip(Settings(database_url=url)))


async def _export_round_trip(settings: Settings) -> None:
    application = bootstrap(settings)
    try:
        bus = application.bus
        assert await application.query(ExportCatalog()) == {
            "markets": [], "verticals": [], "offers": [], "sources": [], "mappings": []
        }  # fmt: skip
        await bus.execute(ApplyCatalog(yaml.safe_load(EXAMPLE.read_text("utf-8"))))
        await bus.execute(ApplyCatalog(catalog_document(tag())))
        exported = await application.query(ExportCatalog())
        # Through YAML text, as `leads catalog export > file; leads catalog apply file` does.
        reloaded = yaml.safe_load(yaml.safe_dump(exported, sort_keys=False))
        applied = await bus.execute(ApplyCatalog(reloaded))
        assert applied.plan.count("unchanged") == len(applied.plan.changes) == 23
        assert await application.query(ExportCatalog()) == exported
        assert not (await application.query(CheckCatalog())).problems
    finally:
        await application.close()
