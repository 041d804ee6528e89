"""The one place errors become HTTP: every error body is `{"error": {code, message, details}}`,
in the format the request's `Accept` asks for (domain/replies.py).

`python -m web.errors` prints the README's errors table, rendered from `ErrorCode`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers, State
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import ErrorCode, LeadError
from domain.replies import CONTENT_TYPES, ReplyFormat, negotiate, render
from infrastructure.database_problems import UNREACHABLE, DatabaseProblem, diagnose, root_cause
from web.log_escape import log_safe
from web.rate_limited_log import RateLimitedLog

log = logging.getLogger("leads.web")

RETRY_AFTER_SECONDS = "1"
ERROR_ID_HEADER = "X-Error-Id"


def reply_media(headers: Headers, default: ReplyFormat | None = None) -> str:
    """The media type to answer in: what `Accept` asks for, else `default` (a source's)."""
    accept = headers.getlist("accept")
    return negotiate(", ".join(accept) if accept else None, default or ReplyFormat.JSON)


def error_body(
    code: ErrorCode,
    message: str,
    details: Mapping[str, object] | None = None,
    media: str = ReplyFormat.JSON.media_type,
) -> bytes:
    """The body of every error answer (the HTTP server's own refusals included)."""
    error = {"code": code.value, "message": message, "details": dict(details or {})}
    return render(media, {"error": error}, "error")


def error_response(
    code: ErrorCode,
    message: str,
    details: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
    media: str = ReplyFormat.JSON.media_type,
) -> Response:
    headers = dict(headers or {})
    if code is ErrorCode.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return Response(
        error_body(code, message, details, media),
        status_code=code.status,
        media_type=CONTENT_TYPES[media],
        headers=headers,
    )


def report_unavailable(state: State, error: BaseException) -> DatabaseProblem | None:
    """One line per cause per minute: a misconfiguration gets its cause, the URL (password
    hidden) and the fix; a passing failure (down, too slow, overloaded) the driver's words."""
    warnings: RateLimitedLog = state.database_warnings
    cause = error.__cause__ or error
    problem = diagnose(cause)
    if problem is not None and problem.reason != UNREACHABLE:
        line = problem.line(state.settings.database_url)
        warnings.warning(problem.reason, "database misconfigured, answering 503: %s", line)
    else:
        key = type(root_cause(cause)).__name__
        warnings.warning(key, "database unavailable, answering 503: %s", log_safe(cause))
    return problem


async def lead_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, LeadError)
    if error.code is ErrorCode.SERVICE_UNAVAILABLE:
        report_unavailable(request.app.state, error)
    media = reply_media(request.headers, error.reply_format)
    return error_response(error.code, error.message, error.details, media=media)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    media = reply_media(request.headers)
    if error.status_code == 404:
        details = {"path": request.url.path}
        return error_response(ErrorCode.NOT_FOUND, "No such resource.", details, media=media)
    if error.status_code == 405:
        allowed = error.headers.get("Allow", "") if error.headers else ""
        return error_response(
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed here.",
            {"allowed": [m.strip() for m in allowed.split(",") if m.strip()]},
            headers={"Allow": allowed} if allowed else None,
            media=media,
        )
    code = ErrorCode.INVALID_REQUEST if 400 <= error.status_code < 500 else ErrorCode.INTERNAL_ERROR
    details = {"reason": f"http_{error.status_code}"}
    return error_response(code, str(error.detail), details, media=media)


async def client_disconnected(request: Request, error: Exception) -> Response:
    # Nobody reads this answer; the line says where the client gave up.
    log.info(
        "connection closed before the request body was read: %s %s",
        log_safe(request.method),
        log_safe(request.scope["path"]),
    )
    return error_response(
        ErrorCode.INVALID_REQUEST,
        "The connection was closed before the request body was complete.",
        {"reason": "client_disconnected"},
    )


async def _validation_error(request: Request, error: Exception) -> Response:
    return error_response(
        ErrorCode.INVALID_REQUEST,
        "The request is not valid.",
        {"reason": "validation"},
        media=reply_media(request.headers),
    )


class UnexpectedErrorMiddleware:
    """Turns any unhandled exception into a 500 envelope; the trace goes to the log only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            error_id = uuid.uuid4().hex
            log.exception(
                "unexpected error %s on %s %s",
                error_id,
                log_safe(scope["method"]),
                log_safe(scope["path"]),
            )
            if started:
                raise
            response = error_response(
                ErrorCode.INTERNAL_ERROR,
                "An unexpected error occurred; it has been logged.",
                headers={ERROR_ID_HEADER: error_id},
                media=reply_media(Headers(scope=scope)),
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.state.database_warnings = RateLimitedLog(log)
    app.add_exception_handler(LeadError, lead_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, client_disconnected)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(UnexpectedErrorMiddleware)


def readme_errors_table() -> str:
    rows = ["| code | HTTP | when (`details`) |", "|---|---|---|"]
    rows += [f"| `{code}` | {code.status} | {code.explained} |" for code in ErrorCode]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(readme_errors_table(), end="")
