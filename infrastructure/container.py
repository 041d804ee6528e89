"""The composition root: the only place that knows which handler serves which command or query.

Adding a command = a command class, a handler class, and one line in `HANDLERS`; a query
likewise, in `QUERY_HANDLERS`. Commands change state through the bus; queries only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import punq
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.base import Command
from commands.catalog import ApplyCatalog
from commands.erase_contact import EraseContact
from commands.ingest_lead import IngestLead
from handlers.bus import CommandBus
from handlers.catalog import ApplyCatalogHandler
from handlers.catalog_ports import OpenCatalogUnitOfWork
from handlers.erase_contact import EraseContactHandler
from handlers.erase_contact_ports import CriterionHasher, OpenErasureStore
from handlers.ingest_lead import IngestLeadHandler
from handlers.ingest_lead_ports import OpenLeadStore
from handlers.source_cache import SourceCache
from infrastructure.catalog_repository import SqlCatalogReader, open_catalog_unit_of_work
from infrastructure.engine import create_engine
from infrastructure.erasure_store import HmacCriterionHasher, open_erasure_store
from infrastructure.lead_store import open_lead_store
from infrastructure.schema_revision import SqlSchemaProbe
from infrastructure.settings import Settings
from queries.base import Query, QueryDispatcher
from queries.catalog import (
    CatalogReader,
    CheckCatalog,
    CheckCatalogHandler,
    DescribeSource,
    DescribeSourceHandler,
    ExportCatalog,
    ExportCatalogHandler,
)
from queries.readiness import CheckReadiness, CheckReadinessHandler, SchemaProbe

R = TypeVar("R")

HANDLERS: dict[type[Command[Any]], type[Any]] = {
    IngestLead: IngestLeadHandler,
    ApplyCatalog: ApplyCatalogHandler,
    EraseContact: EraseContactHandler,
}
QUERY_HANDLERS: dict[type[Query[Any]], type[Any]] = {
    CheckReadiness: CheckReadinessHandler,
    ExportCatalog: ExportCatalogHandler,
    CheckCatalog: CheckCatalogHandler,
    DescribeSource: DescribeSourceHandler,
}


@dataclass(frozen=True, slots=True)
class Application:
    """Everything built at startup; `close()` releases it."""

    engine: AsyncEngine
    bus: CommandBus
    queries: QueryDispatcher

    async def query(self, query: Query[R]) -> R:
        """Answer a read-only query (no command bus, no unit of work)."""
        return await self.queries.ask(query)

    async def close(self) -> None:
        await self.engine.dispose()


def bootstrap(settings: Settings | None = None) -> Application:
    """Build the application; connects to nothing until the first command runs."""
    settings = settings or Settings.from_env()
    engine = create_engine(settings)
    container = punq.Container()
    # punq has no async factories and no request scope: app-wide resources are instances,
    # and each handler opens its own store or unit of work per command.
    open_store = partial(open_lead_store, engine, settings.db_timeout_s)
    container.register(OpenLeadStore, instance=open_store)
    # One per process: the catalog answers that every ingest request classifies with.
    container.register(SourceCache, instance=SourceCache())
    container.register(OpenCatalogUnitOfWork, instance=partial(open_catalog_unit_of_work, engine))
    container.register(OpenErasureStore, instance=partial(open_erasure_store, engine))
    container.register(CriterionHasher, instance=HmacCriterionHasher(settings.erasure_key))
    container.register(SchemaProbe, instance=SqlSchemaProbe(engine))
    container.register(CatalogReader, instance=SqlCatalogReader(engine))
    for handler_type in (*HANDLERS.values(), *QUERY_HANDLERS.values()):
        # Transient here: the bus and the query dispatcher each keep the one they resolve.
        container.register(handler_type)
    bus = CommandBus(HANDLERS, container.resolve)
    # Built now (they connect to nothing): punq fails at resolve time, so at startup.
    queries = QueryDispatcher({q: container.resolve(h) for q, h in QUERY_HANDLERS.items()})
    return Application(engine=engine, bus=bus, queries=queries)
