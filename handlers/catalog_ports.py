"""What the catalog handlers need from storage, declared here and implemented in infrastructure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from domain.catalog import CatalogSnapshot, HttpMapping, Market, Offer, Source, Vertical


class CatalogRepository(Protocol):
    """Catalog rows, addressed by code; references are codes resolved by the storage."""

    async def lock(self) -> None:
        """Hold off other catalog writers until this transaction ends."""
        ...

    async def snapshot(self) -> CatalogSnapshot:
        """The whole catalog as one consistent read."""
        ...

    async def save_market(self, market: Market) -> None: ...
    async def save_vertical(self, vertical: Vertical) -> None: ...
    async def save_offer(self, offer: Offer) -> None: ...
    async def release_source_keys(self, codes: Sequence[str]) -> None:
        """Clear these sources' keys, so the keys can move to other sources afterwards."""
        ...

    async def save_source(self, source: Source) -> None: ...
    async def save_mapping(self, mapping: HttpMapping, stored: HttpMapping | None) -> None:
        """Insert `mapping`, or rewrite the stored row `stored` it replaces."""
        ...


class CatalogUnitOfWork(Protocol):
    """One transaction: rolled back on leaving it unless `commit()` was awaited."""

    catalog: CatalogRepository

    async def commit(self) -> None: ...


# Opens a catalog unit of work for one command.
OpenCatalogUnitOfWork = Callable[[], AbstractAsyncContextManager[CatalogUnitOfWork]]
