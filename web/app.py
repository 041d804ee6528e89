"""The FastAPI application: `python -m uvicorn web.app:app`. Nothing connects at import."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.container import Application, bootstrap
from infrastructure.database_problems import connection_error, diagnose
from infrastructure.settings import Settings, SettingsError
from web import docs, health, http_limits, leads, metrics
from web.errors import install_error_handlers, report_unavailable
from web.openapi import INGEST_PATHS


class _DropQueryString(logging.Filter):
    """uvicorn's access log line without the query string, which may carry contact data."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def _configure_logging(level: str) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("leads").setLevel(level)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _DropQueryString) for f in access.filters):
        access.addFilter(_DropQueryString())


async def _warn_if_unusable(app: FastAPI, settings: Settings) -> None:
    error = await connection_error(settings.database_url, settings.db_timeout_s)
    if error is not None and diagnose(error) is not None:
        report_unavailable(app.state, error)


class _SettingsErrorAtStartup:
    """Starlette reports a failed lifespan startup with the traceback, which uvicorn logs;
    for a SettingsError the line alone says what to fix, and stops uvicorn."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_line(message: Message) -> None:
            # Starlette sends the failure while it handles the exception.
            error = sys.exception()
            if message["type"] == "lifespan.startup.failed" and isinstance(error, SettingsError):
                message = {**message, "message": str(error)}
            await send(message)

        await self.app(scope, receive, send_line)


class _LeadsApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if leads.is_ingest(scope):
            scope["app"] = self  # as Starlette sets it: the endpoint reads app.state
            await leads.serve_ingest(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings_factory: Callable[[], Settings] = Settings.from_env) -> FastAPI:
    # uvicorn's protocols, in the process that serves this app: header size limit, envelopes.
    http_limits.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = settings_factory()
        _configure_logging(settings.log_level)
        http_limits.set_request_timeout(settings.request_timeout_s)
        application: Application = bootstrap(settings)
        app.state.settings = settings
        app.state.bus = application.bus
        app.state.application = application
        app.state.metrics = metrics.registry_for(application.engine)
        # A wrong password or no server: one WARNING line now, not a surprise per request
        # (the same rate-limited line the first failing request would log).
        probe = asyncio.create_task(_warn_if_unusable(app, settings))
        # What start-up built lives as long as the process: out of the collector's sight, a
        # full collection walks only what requests allocate (tens of ms less per pause).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            probe.cancel()
            await application.close()

    app = _LeadsApp(
        title="Lead ingestion service",
        version="1.0.0",
        summary="Classifies each posted lead to source, offer, market and vertical "
        "and creates it exactly once.",
        lifespan=lifespan,
        # Prometheus metrics are ours (/metrics); FastAPI's OpenTelemetry hook would only
        # cost a check per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redirect_slashes=False,
        # FastAPI's own pages load their scripts from a CDN: /docs is web/docs.py's instead.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(_SettingsErrorAtStartup)
    app.router.routes.extend(leads.routes)
    for module in (health, metrics, docs):
        app.include_router(module.router)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate_openapi()
            # The ingest operations, listed first.
            schema["paths"] = {**INGEST_PATHS, **schema.get("paths", {})}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
