"""Operational endpoints: `/healthz` (process up) and `/readyz` (database and schema ready)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from domain.errors import ErrorCode, ServiceUnavailable
from queries.readiness import CheckReadiness
from web.errors import error_response, reply_media, report_unavailable
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
    details: dict[str, object]
    try:
        readiness = await request.app.state.application.query(CheckReadiness())
    except ServiceUnavailable as error:
        problem = report_unavailable(request.app.state, error)
        if problem is None:
            message = "The database is unavailable (busy or too slow)."
            details = {"reason": "unavailable"}
        else:
            message = f"The database is not usable: {problem.cause}; {problem.fix}."
            details = {"reason": problem.reason}
    else:
        if readiness.ready:
            body = {"status": "ready", "schema_revision": readiness.schema_revision}
            return Response(orjson.dumps(body), media_type="application/json")
        request.app.state.database_warnings.warning(
            readiness.reason,
            "database schema at revision %s, expected %s: run `leads db upgrade`",
            readiness.schema_revision,
            readiness.expected_revision,
        )
        message = "The database schema is not at the latest migration; run `leads db upgrade`."
        details = {
            "reason": readiness.reason,
            "schema_revision": readiness.schema_revision,
            "expected_revision": readiness.expected_revision,
        }
    media = reply_media(request.headers)
    return error_response(ErrorCode.SERVICE_UNAVAILABLE, message, details, media=media)
