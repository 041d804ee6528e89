"""The composition root: the only place that knows which handler serves which command.

Adding a command = a command class, a handler class, and one line in `HANDLERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import punq
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.base import Command
from commands.catalog import ApplyCatalog, CheckCatalog, DescribeSource, ExportCatalog
from commands.check_readiness import CheckReadiness
from commands.ingest_lead import IngestLead
from handlers.bus import CommandBus
from handlers.catalog import (
    ApplyCatalogHandler,
    CheckCatalogHandler,
    DescribeSourceHandler,
    ExportCatalogHandler,
)
from handlers.catalog_ports import CatalogUnitOfWorkFactory
from handlers.check_readiness import CheckReadinessHandler, SchemaProbe
from handlers.ingest_lead import IngestLeadHandler
from handlers.ports import LeadStoreFactory
from handlers.source_cache import SourceCache
from infrastructure.catalog_unit_of_work import SqlCatalogUnitOfWorkFactory
from infrastructure.engine import create_engine
from infrastructure.migrate import AlembicSchemaProbe
from infrastructure.settings import Settings
from infrastructure.unit_of_work import DriverLeadStoreFactory

HANDLERS: dict[type[Command[Any]], type[Any]] = {
    IngestLead: IngestLeadHandler,
    CheckReadiness: CheckReadinessHandler,
    ApplyCatalog: ApplyCatalogHandler,
    ExportCatalog: ExportCatalogHandler,
    CheckCatalog: CheckCatalogHandler,
    DescribeSource: DescribeSourceHandler,
}


@dataclass(frozen=True, slots=True)
class Application:
    """Everything built at startup; `close()` releases it."""

    engine: AsyncEngine
    bus: CommandBus

    async def close(self) -> None:
        await self.engine.dispose()


def build_container(settings: Settings, engine: AsyncEngine) -> punq.Container:
    container = punq.Container()
    # punq has no async factories and no request scope: app-wide resources are instances,
    # and each handler opens its own unit of work per command.
    container.register(Settings, instance=settings)
    container.register(AsyncEngine, instance=engine)
    store_factory = DriverLeadStoreFactory(engine, settings.db_timeout_s)
    container.register(LeadStoreFactory, instance=store_factory)
    # One per process: the catalog answers that every ingest request classifies with.
    container.register(SourceCache, instance=SourceCache())
    container.register(CatalogUnitOfWorkFactory, instance=SqlCatalogUnitOfWorkFactory(engine))
    container.register(SchemaProbe, instance=AlembicSchemaProbe(engine))
    for handler_type in HANDLERS.values():
        # Transient here: the bus resolves each handler once and keeps it.
        container.register(handler_type)
    return container


def bootstrap(settings: Settings | None = None) -> Application:
    """Build the application; connects to nothing until the first command runs."""
    settings = settings or Settings.from_env()
    engine = create_engine(settings)
    container = build_container(settings, engine)
    bus = CommandBus(HANDLERS, container.resolve)
    return Application(engine=engine, bus=bus)
