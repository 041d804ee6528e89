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

from collections.abc import Awaitable, Callable
from typing import TypeVar

from domain.sources import MappedSource, SourceBinding, Versioned
from handlers.ingest_lead_ports import SourceRepository

MAX_ENTRIES = 100_000

K = TypeVar("K")
V = TypeVar("V")


class SourceCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.version: int | None = None
        self.by_id: dict[int, SourceBinding] = {}
        self.by_key: dict[str, SourceBinding] = {}
        self.by_host: dict[str, tuple[MappedSource, ...]] = {}

    def forget(self, stale_version: int | None = None) -> None:
        """Drop everything (the next lookups read the database) — unless what is held was read
        at a newer version than `stale_version`, the version a write found stale: then a
        concurrent request has already refilled the cache with current answers."""
        if self.version is not None and stale_version is not None and self.version > stale_version:
            return
        self.version = None
        self.by_id.clear()
        self.by_key.clear()
        self.by_host.clear()

    def get(self, table: dict[K, V], key: K) -> Versioned[V] | None:
        value = table.get(key)
        return None if value is None or self.version is None else Versioned(value, self.version)

    def put(self, table: dict[K, V], key: K, found: Versioned[V]) -> None:
        """Keep an answer read at `found.version`: a newer version than held drops everything
        held; an older one is not kept (the version it describes is gone)."""
        if self.version is None or found.version > self.version:
            self.forget()
            self.version = found.version
        elif found.version < self.version:
            return
        if key not in table and len(table) >= self.max_entries:
            del table[next(iter(table))]
        table[key] = found.value

    def reading_through(self, database: SourceRepository, *, fresh: bool) -> CachedSources:
        return CachedSources(self, database, fresh=fresh)

    def __len__(self) -> int:
        return len(self.by_id) + len(self.by_key) + len(self.by_host)


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
        return await self._read(self._cache.by_id, source_id, self._database.by_id)

    async def by_key(self, source_key: str) -> Versioned[SourceBinding] | None:
        return await self._read(self._cache.by_key, source_key, self._database.by_key)

    async def mapped_to_host(self, hostname: str) -> Versioned[tuple[MappedSource, ...]] | None:
        return await self._read(self._cache.by_host, hostname, self._database.mapped_to_host)

    async def _read(
        self, table: dict[K, V], key: K, read: Callable[[K], Awaitable[Versioned[V] | None]]
    ) -> Versioned[V] | None:
        if not self._fresh:
            cached = self._cache.get(table, key)
            if cached is not None:
                self.served_from_cache = True
                return cached
        found = await read(key)
        if found is not None:
            self._cache.put(table, key, found)
        return found
