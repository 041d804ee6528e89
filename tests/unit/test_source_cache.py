"""SourceCache and the ingest handler's use of it, with fake repositories (no database)."""

from __future__ import annotations

import tracemalloc
import uuid
from dataclasses import dataclass, field, replace

import pytest

from commands.ingest_lead import IngestLead
from domain.errors import InvalidSource, InvalidSourceKey, ServiceUnavailable
from domain.sources import MappedSource, SourceBinding, Versioned
from handlers.ingest_lead import MAX_ATTEMPTS, IngestLeadHandler
from handlers.source_cache import SourceCache
from tests.unit.fakes import FakeDatabase, FakeLeadStores, FakeOffer

SOURCE = SourceBinding(
    source_id=7, source_key="k-7", offer_id=3, market_id=1, vertical_id=2, phone_region="US"
)


def _versioned(version: int, source: SourceBinding = SOURCE) -> Versioned[SourceBinding]:
    return Versioned(source, version)


# --- the cache on its own -------------------------------------------------------------------


def test_a_put_answer_is_served_with_its_version() -> None:
    cache = SourceCache()
    cache.put(cache.by_id, 7, _versioned(4))
    assert cache.get(cache.by_id, 7) == _versioned(4)
    assert cache.get(cache.by_id, 8) is None
    assert cache.get(cache.by_key, "k-7") is None


def test_a_newer_version_drops_everything_older() -> None:
    cache = SourceCache()
    cache.put(cache.by_id, 7, _versioned(4))
    cache.put(cache.by_key, "k-7", _versioned(4))
    other = replace(SOURCE, source_id=8)
    cache.put(cache.by_id, 8, _versioned(5, other))
    assert cache.version == 5
    assert cache.get(cache.by_id, 7) is None
    assert cache.get(cache.by_key, "k-7") is None
    assert cache.get(cache.by_id, 8) == _versioned(5, other)


def test_an_older_version_is_not_kept() -> None:
    cache = SourceCache()
    cache.put(cache.by_id, 8, _versioned(5))
    cache.put(cache.by_id, 7, _versioned(4))
    assert cache.get(cache.by_id, 7) is None
    assert cache.get(cache.by_id, 8) == _versioned(5)


def test_forget_drops_everything() -> None:
    cache = SourceCache()
    cache.put(cache.by_id, 7, _versioned(4))
    cache.forget()
    assert cache.get(cache.by_id, 7) is None
    assert len(cache) == 0
    assert cache.version is None


def test_a_stale_version_forgets_only_what_is_not_newer() -> None:
    cache = SourceCache()
    cache.put(cache.by_id, 7, _versioned(5))
    cache.forget(4)  # a write read at 4 found it stale; what is held (5) was read since
    assert cache.get(cache.by_id, 7) == _versioned(5)
    cache.forget(5)
    assert cache.get(cache.by_id, 7) is None


def test_each_table_is_bounded_and_drops_its_oldest_entry() -> None:
    cache = SourceCache(max_entries=3)
    for source_id in range(1, 6):
        cache.put(cache.by_id, source_id, _versioned(1, replace(SOURCE, source_id=source_id)))
    cache.put(cache.by_key, "k", _versioned(1))
    assert [cache.get(cache.by_id, i) is not None for i in range(1, 6)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert len(cache) == 4
    cache.put(cache.by_id, 5, _versioned(1))  # replacing an entry makes no room
    assert cache.get(cache.by_id, 3) is not None


def test_memory_per_100k_sources_is_bounded() -> None:
    """What README states: a source cached by id, by key and by one host mapping."""
    cache = SourceCache()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1, 10_001):
            source = SourceBinding(n, f"key-{uuid.uuid4().hex[:12]}", n, 1, 2, "US")
            found = _versioned(1, source)
            cache.put(cache.by_id, n, found)
            cache.put(cache.by_key, str(source.source_key), found)
            mapped = Versioned((MappedSource("/", source),), 1)
            cache.put(cache.by_host, f"h{n}.example.com", mapped)
        per_source = (tracemalloc.get_traced_memory()[0] - before) / 10_000
    finally:
        tracemalloc.stop()
    assert 100 < per_source < 1_500, per_source  # ~N bytes: 100k sources stay well under 150 MiB


# --- reading through the cache --------------------------------------------------------------


@dataclass
class FakeSources:
    """The database's answers, at `version`; counts the reads."""

    version: int = 1
    by_source_id: dict[int, SourceBinding] = field(default_factory=dict)
    by_source_key: dict[str, SourceBinding] = field(default_factory=dict)
    by_hostname: dict[str, list[MappedSource]] = field(default_factory=dict)
    reads: int = 0

    async def by_id(self, source_id: int) -> Versioned[SourceBinding] | None:
        self.reads += 1
        found = self.by_source_id.get(source_id)
        return None if found is None else Versioned(found, self.version)

    async def by_key(self, source_key: str) -> Versioned[SourceBinding] | None:
        self.reads += 1
        found = self.by_source_key.get(source_key)
        return None if found is None else Versioned(found, self.version)

    async def mapped_to_host(self, hostname: str) -> Versioned[tuple[MappedSource, ...]] | None:
        self.reads += 1
        found = self.by_hostname.get(hostname)
        return None if not found else Versioned(tuple(found), self.version)


async def test_only_positive_answers_are_kept() -> None:
    cache, database = SourceCache(), FakeSources(by_source_id={7: SOURCE})
    sources = cache.reading_through(database, fresh=False)
    assert await sources.by_id(8) is None
    assert await sources.by_id(8) is None
    assert await sources.by_id(7) == _versioned(1)
    assert await sources.by_id(7) == _versioned(1)
    assert database.reads == 3
    assert sources.served_from_cache


async def test_fresh_reads_skip_the_cache_but_refill_it() -> None:
    cache, database = SourceCache(), FakeSources(by_source_key={"k-7": SOURCE})
    await cache.reading_through(database, fresh=False).by_key("k-7")
    database.version = 2
    fresh = cache.reading_through(database, fresh=True)
    assert await fresh.by_key("k-7") == _versioned(2)
    assert not fresh.served_from_cache
    assert cache.get(cache.by_key, "k-7") == _versioned(2)


async def test_host_mappings_are_kept_as_one_answer() -> None:
    mapped = [MappedSource("/a", SOURCE), MappedSource("/b", replace(SOURCE, source_id=8))]
    cache, database = SourceCache(), FakeSources(by_hostname={"h.example": mapped})
    sources = cache.reading_through(database, fresh=False)
    assert await sources.mapped_to_host("nowhere.example") is None
    first = await sources.mapped_to_host("h.example")
    second = await sources.mapped_to_host("h.example")
    assert first is not None and second is not None
    assert list(second.value) == mapped == list(first.value)
    assert database.reads == 2


# --- the handler: stale answers, confirmed rejections, churn ----------------------------------


def _handler() -> tuple[IngestLeadHandler, FakeDatabase, SourceCache]:
    database, cache = FakeDatabase(), SourceCache()
    database.add_source(7, FakeOffer(3, 1, 2, "US"), "k-7")
    return IngestLeadHandler(FakeLeadStores(database), cache), database, cache


def _command(key: str, *, source_key: str | None = None) -> IngestLead:
    fields = {"source_id": 7, "source_key": source_key, "email": "a@b.co"}
    return IngestLead.from_posted(fields, [key], "testserver", "/api/leads")


async def test_a_warm_cache_writes_without_reading() -> None:
    handler, database, _ = _handler()
    assert not (await handler(_command("one"))).replayed
    lookups = database.lookups
    assert not (await handler(_command("two"))).replayed
    assert database.lookups == lookups
    assert (await handler(_command("two"))).replayed


async def test_a_stale_answer_is_forgotten_read_again_and_written_at_the_new_version() -> None:
    handler, database, cache = _handler()
    await handler(_command("one"))
    database.sources[7].offer = FakeOffer(30, 10, 20, "US")
    database.change()
    writes = database.writes
    result = await handler(_command("two"))
    assert (result.lead.offer_id, result.lead.market_id, result.lead.vertical_id) == (30, 10, 20)
    assert database.writes == writes + 2  # refused as stale, then written
    moved = database.binding(database.sources[7])
    assert moved is not None
    assert cache.get(cache.by_id, 7) == Versioned(moved, database.version)


async def test_a_stale_answer_for_a_source_now_gone_is_rejected() -> None:
    handler, database, _ = _handler()
    await handler(_command("one"))
    del database.sources[7]
    database.change()
    with pytest.raises(InvalidSource):
        await handler(_command("two"))
    assert len(database.leads) == 1


async def test_a_rejection_from_a_cached_answer_is_confirmed_by_the_database() -> None:
    handler, database, _ = _handler()
    database.sources[7].source_key = None
    database.change()
    await handler(_command("one"))
    database.sources[7].source_key = "k-7"  # the source got its key
    database.change()
    result = await handler(_command("two", source_key="k-7"))
    assert result.lead.source_id == 7
    database.sources[7].source_key = None
    database.change()
    await handler(_command("three"))
    lookups = database.lookups
    with pytest.raises(InvalidSourceKey):
        await handler(_command("four", source_key="k-7"))
    assert database.lookups == lookups + 1  # confirmed once, then rejected


async def test_a_catalog_that_keeps_changing_is_a_503_after_the_last_attempt() -> None:
    handler, database, _ = _handler()
    database.churn = True
    with pytest.raises(ServiceUnavailable):
        await handler(_command("one"))
    assert database.writes == MAX_ATTEMPTS
    assert not database.leads
