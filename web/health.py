"""Operational endpoints: `/healthz` (process up) and `/readyz` (database and schema ready)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from queries.readiness import CheckReadiness
from web.errors import error_response
from web.openapi import RESPONSES

router = APIRouter()


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    summary="The database answers and its schema is current",
    responses={503: RESPONSES[503]},
)
async def readyz(request: Request) -> Response:
    readiness = await request.app.state.application.query(CheckReadiness())
    if not readiness.ready:
        return error_response(
            "service_unavailable",
            "The database schema is not at the latest migration; run `leads db upgrade`.",
            {
                "reason": readiness.reason,
                "schema_revision": readiness.schema_revision,
                "expected_revision": readiness.expected_revision,
            },
        )
    body = {"status": "ready", "schema_revision": readiness.schema_revision}
    return Response(orjson.dumps(body), media_type="application/json")
