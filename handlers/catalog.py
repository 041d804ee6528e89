"""Handles `ApplyCatalog` in one transaction through a catalog unit of work."""

from __future__ import annotations

from typing import Any

from commands.catalog import ApplyCatalog, CatalogApplied
from domain.catalog import parse_catalog
from domain.catalog_plan import PlannedChange, plan_catalog
from handlers.catalog_ports import OpenCatalogUnitOfWork


class ApplyCatalogHandler:
    def __init__(self, open_uow: OpenCatalogUnitOfWork) -> None:
        self._open_uow = open_uow

    async def __call__(self, command: ApplyCatalog) -> CatalogApplied:
        # A malformed document fails before any connection is taken.
        document = parse_catalog(command.document)
        async with self._open_uow() as catalog:
            # Serialized with other appliers: the plan is made on what it is written over.
            await catalog.lock()
            plan = plan_catalog(
                document, await catalog.snapshot(), allow_ambiguous=command.allow_ambiguous
            )
            if plan.has_changes and not command.dry_run:
                # Referenced entries first, so every code an entry names exists when written;
                # keys that move are released before any source takes one.
                referenced: tuple[PlannedChange[Any], ...] = (
                    *plan.markets,
                    *plan.verticals,
                    *plan.offers,
                )
                for change in referenced:
                    if change.action != "unchanged":
                        await catalog.save(change.record)
                if plan.sources_changing_key:
                    await catalog.release_source_keys(plan.sources_changing_key)
                for source in plan.sources:
                    if source.action != "unchanged":
                        await catalog.save(source.record)
                for mapping in plan.mappings:
                    if mapping.action != "unchanged":
                        await catalog.save_mapping(mapping.record, mapping.stored)
                await catalog.commit()
        return CatalogApplied(plan=plan, dry_run=command.dry_run)
