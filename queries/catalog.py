"""Catalog queries: export it, check it, describe one source — reads of one catalog snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.catalog import CatalogSnapshot, SourceDescription, catalog_document, describe_source
from domain.catalog_check import CatalogReport, check_catalog
from queries.base import Query

CatalogDocumentData = dict[str, list[dict[str, object]]]


class CatalogReader(Protocol):
    """The stored catalog, declared here and implemented in infrastructure."""

    async def snapshot(self) -> CatalogSnapshot:
        """The whole catalog as one consistent read."""


@dataclass(frozen=True, slots=True)
class ExportCatalog(Query[CatalogDocumentData]):
    """The whole stored catalog in the document format `ApplyCatalog` takes."""


@dataclass(frozen=True, slots=True)
class CheckCatalog(Query[CatalogReport]):
    """Ambiguous mappings and active entries that cannot take leads."""


@dataclass(frozen=True, slots=True)
class DescribeSource(Query[SourceDescription]):
    """One source with what a publisher needs to post to it."""

    code: str


class _ReadsCatalog:
    def __init__(self, catalog: CatalogReader) -> None:
        self._catalog = catalog


class ExportCatalogHandler(_ReadsCatalog):
    async def __call__(self, query: ExportCatalog) -> CatalogDocumentData:
        return catalog_document(await self._catalog.snapshot())


class CheckCatalogHandler(_ReadsCatalog):
    async def __call__(self, query: CheckCatalog) -> CatalogReport:
        return check_catalog(await self._catalog.snapshot())


class DescribeSourceHandler(_ReadsCatalog):
    async def __call__(self, query: DescribeSource) -> SourceDescription:
        return describe_source(await self._catalog.snapshot(), query.code)
