"""What the catalog handlers need from storage, declared here and implemented in infrastructure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from domain.catalog import CatalogSnapshot, HttpMapping, Market, Offer, Source, Vertical


class CatalogUnitOfWork(Protocol):
    """Catalog rows in one transaction, rolled back unless `commit()` was awaited; entries are
    addressed by code, and the storage resolves the codes they name."""

    async def commit(self) -> None: ...

    async def lock(self) -> None:
        """Hold off other catalog writers until this transaction ends."""

    async def snapshot(self) -> CatalogSnapshot: ...
    async def save(self, record: Market | Vertical | Offer | Source) -> None: ...
    async def release_source_keys(self, codes: Sequence[str]) -> None:
        """Clear these sources' keys, so the keys can move to other sources afterwards."""

    async def save_mapping(self, mapping: HttpMapping, stored: HttpMapping | None) -> None:
        """Insert `mapping`, or rewrite the stored row `stored` it replaces."""


OpenCatalogUnitOfWork = Callable[[], AbstractAsyncContextManager[CatalogUnitOfWork]]
