"""The read side without a database: query dispatcher, readiness and catalog queries on fakes."""

from __future__ import annotations

import pytest

from domain.catalog import (
    CatalogEntryNotFound,
    CatalogSnapshot,
    HttpMapping,
    Market,
    Offer,
    Source,
    Vertical,
)
from queries.base import QueryDispatcher, UnknownQuery
from queries.catalog import (
    CheckCatalog,
    CheckCatalogHandler,
    DescribeSource,
    DescribeSourceHandler,
    ExportCatalog,
    ExportCatalogHandler,
)
from queries.readiness import CheckReadiness, CheckReadinessHandler, Readiness


class FakeProbe:
    expected_revision = "0002"

    def __init__(self, current: str | None) -> None:
        self.current = current

    async def current_revision(self) -> str | None:
        return self.current


class FakeCatalogReader:
    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self._snapshot = snapshot
        self.reads = 0

    async def snapshot(self) -> CatalogSnapshot:
        self.reads += 1
        return self._snapshot


SNAPSHOT = CatalogSnapshot(
    markets=(Market("us", "United States", "US"),),
    verticals=(Vertical("solar", "Solar"),),
    offers=(Offer("us-solar", "US solar", "us", "solar"),),
    sources=(Source("a", "A", "us-solar", "key-a"), Source("b", "B", "us-solar")),
    mappings=(
        HttpMapping("a", "leads.example.com", "/api/leads"),
        HttpMapping("b", "leads.example.com", "/api/leads"),
    ),
    source_ids={"a": 1, "b": 2},
)


def dispatcher(reader: FakeCatalogReader, probe: FakeProbe) -> QueryDispatcher:
    return QueryDispatcher(
        {
            CheckReadiness: CheckReadinessHandler(probe),
            ExportCatalog: ExportCatalogHandler(reader),
            CheckCatalog: CheckCatalogHandler(reader),
            DescribeSource: DescribeSourceHandler(reader),
        }
    )


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ("0002", Readiness(True, "ready", "0002", "0002")),
        (None, Readiness(False, "schema_not_migrated", None, "0002")),
        ("0001", Readiness(False, "schema_out_of_date", "0001", "0002")),
    ],
)
async def test_readiness(current: str | None, expected: Readiness) -> None:
    queries = dispatcher(FakeCatalogReader(SNAPSHOT), FakeProbe(current))
    assert await queries.ask(CheckReadiness()) == expected


async def test_catalog_queries_read_one_snapshot_each() -> None:
    reader = FakeCatalogReader(SNAPSHOT)
    queries = dispatcher(reader, FakeProbe("0002"))
    exported = await queries.ask(ExportCatalog())
    assert [s["code"] for s in exported["sources"]] == ["a", "b"]
    report = await queries.ask(CheckCatalog())
    assert report.has_ambiguity
    description = await queries.ask(DescribeSource("a"))
    assert (description.source_id, description.source.source_key) == (1, "key-a")
    with pytest.raises(CatalogEntryNotFound):
        await queries.ask(DescribeSource("nobody"))
    assert reader.reads == 4


async def test_an_unregistered_query_is_refused() -> None:
    with pytest.raises(UnknownQuery):
        await QueryDispatcher({}).ask(CheckReadiness())
