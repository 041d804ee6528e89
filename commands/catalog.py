"""Catalog commands: apply a declarative catalog (reads of it are queries: queries/catalog.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from commands.base import Command
from domain.catalog_plan import CatalogPlan


@dataclass(frozen=True, slots=True)
class CatalogApplied:
    """What the apply did (or, on a dry run, would do) to each entry of the document."""

    plan: CatalogPlan
    dry_run: bool


@dataclass(frozen=True, slots=True)
class ApplyCatalog(Command[CatalogApplied]):
    """Create or update every entry of `document` (parsed YAML/JSON) in one transaction.

    Entries the document leaves out are left alone; `dry_run` plans and writes nothing;
    `allow_ambiguous` applies a document that gives a hostname and path prefix to more than
    one live source (otherwise refused).
    """

    document: Mapping[str, object]
    dry_run: bool = False
    allow_ambiguous: bool = False
