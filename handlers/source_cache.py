"""The per-process cache of catalog answers the ingest handler classifies with.

It holds POSITIVE answers only — an active source by id, by key, the active mappings of a
host — each tagged with the catalog version it was read at, and only one version at a time:
an answer read at a newer version drops everything older. A miss always asks the database, so
a source created a second ago classifies at once. Nothing expires: the lead's write checks, in
the same statement, that the catalog is still at the version the answer was read at, and a
stale answer is forgotten and read again (`IngestLeadHandler`). Each table holds at most
`max_entries`; past that the oldest entry makes room.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from handlers.ports import MappedSource, SourceBinding, SourceRepository, Versioned

MAX_ENTRIES = 100_000

K = TypeVar("K")
V = TypeVar("V")


class _Table(Generic[K, V]):
    """A bounded dict that makes room by dropping its oldest entry."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        if key not in self._entries and len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class SourceCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.version: int | None = None
        self.by_id: _Table[int, SourceBinding] = _Table(max_entries)
        self.by_key: _Table[str, SourceBinding] = _Table(max_entries)
        self.by_host: _Table[str, Sequence[MappedSource]] = _Table(max_entries)

    def forget(self, stale_version: int | None = None) -> None:
        """Drop everything (the next lookups read the database) — unless what is held was read
        at a newer version than `stale_version`, the version a write found stale: then a
        concurrent request has already refilled the cache with current answers."""
        held = self.version
        if held is not None and stale_version is not None and held > stale_version:
            return
        self.version = None
        for table in self._tables():
            table.clear()

    def get(self, table: _Table[K, V], key: K) -> Versioned[V] | None:
        value = table.get(key)
        if value is None or self.version is None:
            return None
        return Versioned(value, self.version)

    def put(self, table: _Table[K, V], key: K, found: Versioned[V]) -> None:
        """Keep an answer read at `found.version`: a newer version than held drops everything
        held; an older one is not kept (the version it describes is gone)."""
        if self.version is None or found.version > self.version:
            self.forget()
            self.version = found.version
        elif found.version < self.version:
            return
        table.put(key, found.value)

    def reading_through(self, database: SourceRepository, *, fresh: bool) -> CachedSources:
        return CachedSources(self, database, fresh=fresh)

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables())

    def _tables(
        self,
    ) -> tuple[
        _Table[int, SourceBinding],
        _Table[str, SourceBinding],
        _Table[str, Sequence[MappedSource]],
    ]:
        return self.by_id, self.by_key, self.by_host


class CachedSources:
    """A `SourceRepository` answered from the cache when it holds the answer, else from the
    database (whose positive answers are then kept). `fresh` skips the cache's answers, to
    confirm a rejection or to re-read after a stale write. `served_from_cache` says whether any
    answer came from the cache."""

    def __init__(self, cache: SourceCache, database: SourceRepository, *, fresh: bool) -> None:
        self._cache = cache
        self._database = database
        self._fresh = fresh
        self.served_from_cache = False

    async def by_id(self, source_id: int) -> Versioned[SourceBinding] | None:
        cached = self._cached(self._cache.by_id, source_id)
        if cached is not None:
            return cached
        found = await self._database.by_id(source_id)
        if found is not None:
            self._cache.put(self._cache.by_id, source_id, found)
        return found

    async def by_key(self, source_key: str) -> Versioned[SourceBinding] | None:
        cached = self._cached(self._cache.by_key, source_key)
        if cached is not None:
            return cached
        found = await self._database.by_key(source_key)
        if found is not None:
            self._cache.put(self._cache.by_key, source_key, found)
        return found

    async def mapped_to_host(self, hostname: str) -> Versioned[Sequence[MappedSource]] | None:
        cached = self._cached(self._cache.by_host, hostname)
        if cached is not None:
            return cached
        found = await self._database.mapped_to_host(hostname)
        if found is not None:
            kept: Versioned[Sequence[MappedSource]] = Versioned(tuple(found.value), found.version)
            self._cache.put(self._cache.by_host, hostname, kept)
        return found

    def _cached(self, table: _Table[K, V], key: K) -> Versioned[V] | None:
        if self._fresh:
            return None
        cached = self._cache.get(table, key)
        if cached is not None:
            self.served_from_cache = True
        return cached
