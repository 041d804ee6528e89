"""`POST /api/leads[/…]`: HTTP in, an `IngestLead` command to the bus, the lead out."""

from __future__ import annotations

import contextlib
import time

from starlette._utils import get_route_path
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from commands.ingest_lead import HttpClient, IngestLead, LeadIngested
from domain.catalog import LEADS_PATH
from domain.classification import check_host, check_request_path
from domain.errors import LeadError
from domain.replies import CONTENT_TYPES, ReplyFormat, render
from web.body import read_fields
from web.errors import UnexpectedErrorMiddleware, client_disconnected, lead_error, reply_media
from web.metrics import ingest_failed, ingest_succeeded


class _AnySubPath(Convertor[str]):
    """Like Starlette's `path`, but also matching line breaks (a percent-decoded `%0A`)."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anysubpath", _AnySubPath())


def _header_text(value: str | None) -> str | None:
    """A header value as text: sent as UTF-8 when it is not ASCII (it arrives decoded as
    latin-1), else kept as received."""
    if value is not None and not value.isascii():
        with contextlib.suppress(UnicodeError):
            return value.encode("latin-1").decode("utf-8")
    return value


def _origin(request: Request) -> tuple[str | None, str]:
    scope = request.scope
    headers = request.headers
    host = headers.get("host")
    if request.app.state.settings.trust_forwarded_host:
        forwarded = headers.get("x-forwarded-host")
        if forwarded:
            host = forwarded.split(",", 1)[0]
    host = _header_text(host)  # a Unicode host name is sent as UTF-8
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and not path.startswith(root_path):
        path = root_path + path
    return host, path


def _client(request: Request) -> HttpClient:
    peer = request.scope.get("client")
    headers = request.headers
    return HttpClient.from_request(
        peer[0] if peer else None,
        headers.getlist("x-forwarded-for"),
        _header_text(headers.get("user-agent")),
        request.app.state.settings.trusted_proxies,
    )


def check_request_origin(request: Request) -> None:
    """Refuses a path or Host header that cannot be stored or mapped unambiguously."""
    scope = request.scope
    raw_path: bytes | None = scope.get("raw_path")
    # The raw path is ASCII on the wire (servers reject anything else); latin-1 cannot fail.
    check_request_path(scope["path"], None if raw_path is None else raw_path.decode("latin-1"))
    check_host(request.headers.getlist("host"))


def lead_response(lead: LeadIngested, media: str = ReplyFormat.JSON.media_type) -> Response:
    """201 with the new lead, or 200 with a replayed one, in `media` (domain/replies.py)."""
    body = render(media, lead.as_json(), "lead")
    content_type = CONTENT_TYPES[media]
    if lead.replayed:
        return Response(
            body, status_code=200, media_type=content_type, headers={"Idempotent-Replayed": "true"}
        )
    return Response(body, status_code=201, media_type=content_type)


async def ingest_lead(request: Request) -> Response:
    started = time.perf_counter()
    try:
        check_request_origin(request)
        fields = await read_fields(request, request.app.state.settings.max_body_bytes)
        host, path = _origin(request)
        command = IngestLead.from_posted(
            fields, request.headers.getlist("idempotency-key"), host, path, _client(request)
        )
        lead: LeadIngested = await request.app.state.bus.execute(command)
    except Exception as error:
        ingest_failed(error, started)
        raise
    ingest_succeeded(lead.replayed, started)
    return lead_response(lead, reply_media(request.headers, lead.reply_format))


# Plain Starlette routes: the endpoint reads the request itself, so FastAPI's parameter
# solving would be pure overhead. `web.openapi.INGEST_PATHS` documents them. A POST to them
# is served by `serve_ingest` (below); other methods reach the routes, for 405.
routes = [
    Route(LEADS_PATH, ingest_lead, methods=["POST"]),
    Route(LEADS_PATH + "/{subpath:anysubpath}", ingest_lead, methods=["POST"]),
]


def is_ingest(scope: Scope) -> bool:
    """A POST that `routes` take (a percent-decoded path, like theirs, with the root path off)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path = get_route_path(scope)
    return path == LEADS_PATH or path.startswith(LEADS_PATH + "/")


async def _answer_ingest(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive, send)
    try:
        response = await ingest_lead(request)
    except LeadError as error:
        response = await lead_error(request, error)
    except ClientDisconnect as error:
        response = await client_disconnected(request, error)
    await response(scope, receive, send)


# A POST to the ingest routes, as the framework's stack would serve it — the same endpoint,
# the same error answers, unexpected errors logged and answered 500 — without the seven ASGI
# layers between (each wraps every message sent): a tenth of a request's CPU.
serve_ingest = UnexpectedErrorMiddleware(_answer_ingest)
