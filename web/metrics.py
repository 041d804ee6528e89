"""Prometheus metrics: `GET /metrics` — lead outcomes by error code, latency, database pool."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from domain.errors import LeadError

router = APIRouter()

LEADS = Counter(
    "leads_ingest_requests_total",
    "POST /api/leads requests by outcome (created, replayed, rejected, unavailable, aborted, "
    "failed) and error code.",
    ["outcome", "code"],
)
LATENCY = Histogram(
    "leads_ingest_duration_seconds",
    "Time to answer POST /api/leads, from the first byte of the body read to the result.",
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_CREATED = LEADS.labels("created", "")
_REPLAYED = LEADS.labels("replayed", "")


def ingest_succeeded(replayed: bool, started: float) -> None:
    """Count one answered lead; `started` is `time.perf_counter()` when its request began."""
    (_REPLAYED if replayed else _CREATED).inc()
    LATENCY.observe(time.perf_counter() - started)


def ingest_failed(error: BaseException, started: float) -> None:
    if isinstance(error, LeadError):
        outcome = "unavailable" if error.code == "service_unavailable" else "rejected"
        LEADS.labels(outcome, error.code).inc()
    elif isinstance(error, ClientDisconnect):
        # The client's doing (it closed the connection mid-body), not a bug of ours.
        LEADS.labels("aborted", "client_disconnected").inc()
    else:
        LEADS.labels("failed", "internal_error").inc()
    LATENCY.observe(time.perf_counter() - started)


class _Scraped(Collector):
    """This process's metrics, then the connection pool's state, read at scrape time (no cost
    on the request path)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()
        pool: Any = self._engine.pool  # replaced when the engine is disposed: read it now
        for name, documentation, value in (
            ("leads_db_pool_size", "Configured database connections.", pool.size),
            ("leads_db_pool_checked_out", "Connections in use.", pool.checkedout),
            ("leads_db_pool_checked_in", "Idle pooled connections.", pool.checkedin),
        ):
            gauge = GaugeMetricFamily(name, documentation)
            gauge.add_metric([], value())
            yield gauge


def registry_for(engine: AsyncEngine) -> CollectorRegistry:
    """The registry `/metrics` serves: this process's, or all workers' when
    PROMETHEUS_MULTIPROC_DIR is set (then pool gauges are left out: they are per process)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Scraped(engine))
    return registry


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
