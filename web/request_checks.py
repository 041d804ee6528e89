"""Checks of the request line and Host header made before a posted lead is read."""

from __future__ import annotations

from starlette.requests import Request

from domain.classification import check_host, check_request_path


def check_request_origin(request: Request) -> None:
    """Refuses a path or Host header that cannot be stored or mapped unambiguously."""
    scope = request.scope
    raw_path: bytes | None = scope.get("raw_path")
    # The raw path is ASCII on the wire (servers reject anything else); latin-1 cannot fail.
    check_request_path(scope["path"], None if raw_path is None else raw_path.decode("latin-1"))
    check_host(request.headers.getlist("host"))
