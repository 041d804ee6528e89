"""Catalog commands: apply a declarative catalog, export it, check it, describe one source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from commands.base import Command
from domain.catalog import SourceDescription
from domain.catalog_check import CatalogReport
from domain.catalog_plan import CatalogPlan

CatalogDocumentData = dict[str, list[dict[str, object]]]


@dataclass(frozen=True, slots=True)
class CatalogApplied:
    """What the apply did (or, on a dry run, would do) to each entry of the document."""

    plan: CatalogPlan
    dry_run: bool


@dataclass(frozen=True, slots=True)
class ApplyCatalog(Command[CatalogApplied]):
    """Create or update every entry of `document` (parsed YAML/JSON) in one transaction.

    Entries the document leaves out are left alone; `dry_run` plans and writes nothing.
    """

    document: Mapping[str, object]
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ExportCatalog(Command[CatalogDocumentData]):
    """The whole stored catalog in the document format `ApplyCatalog` takes."""


@dataclass(frozen=True, slots=True)
class CheckCatalog(Command[CatalogReport]):
    """Ambiguous mappings and active entries that cannot take leads."""


@dataclass(frozen=True, slots=True)
class DescribeSource(Command[SourceDescription]):
    """One source with what a publisher needs to post to it."""

    code: str
