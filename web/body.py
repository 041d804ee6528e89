"""Reading a posted lead off HTTP: the bounded body bytes; `domain.posted` makes them fields."""

from __future__ import annotations

from starlette.requests import Request

from domain.errors import InvalidRequest
from domain.posted import posted_fields


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing anything over `limit` bytes without buffering past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(
            f"The body is larger than {limit} bytes.", reason="body_too_large", limit=limit
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidRequest(
                f"The body is larger than {limit} bytes.", reason="body_too_large", limit=limit
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_fields(request: Request, limit: int) -> dict[str, object]:
    """Body fields (JSON object or form) merged with the query string's parameters."""
    body = await read_body(request, limit)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return posted_fields(body, media_type, request.scope.get("query_string", b""))
