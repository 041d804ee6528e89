"""Handles `ApplyCatalog` in one transaction through a catalog unit of work."""

from __future__ import annotations

from commands.catalog import ApplyCatalog, CatalogApplied
from domain.catalog import parse_catalog
from domain.catalog_plan import CatalogPlan, plan_catalog
from handlers.catalog_ports import CatalogRepository, OpenCatalogUnitOfWork


class ApplyCatalogHandler:
    def __init__(self, open_uow: OpenCatalogUnitOfWork) -> None:
        self._open_uow = open_uow

    async def __call__(self, command: ApplyCatalog) -> CatalogApplied:
        # A malformed document fails before any connection is taken.
        document = parse_catalog(command.document)
        async with self._open_uow() as uow:
            # Serialized with other appliers: the plan is made on what it is written over.
            await uow.catalog.lock()
            plan = plan_catalog(
                document, await uow.catalog.snapshot(), allow_ambiguous=command.allow_ambiguous
            )
            if plan.has_changes and not command.dry_run:
                await _write(uow.catalog, plan)
                await uow.commit()
        return CatalogApplied(plan=plan, dry_run=command.dry_run)


async def _write(catalog: CatalogRepository, plan: CatalogPlan) -> None:
    """Referenced entries first, so every code an entry names exists when it is written."""
    for market in plan.markets:
        if market.action != "unchanged":
            await catalog.save_market(market.record)
    for vertical in plan.verticals:
        if vertical.action != "unchanged":
            await catalog.save_vertical(vertical.record)
    for offer in plan.offers:
        if offer.action != "unchanged":
            await catalog.save_offer(offer.record)
    if plan.sources_changing_key:
        await catalog.release_source_keys(plan.sources_changing_key)
    for source in plan.sources:
        if source.action != "unchanged":
            await catalog.save_source(source.record)
    for mapping in plan.mappings:
        if mapping.action != "unchanged":
            await catalog.save_mapping(mapping.record, mapping.stored)
