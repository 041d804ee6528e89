"""Reading a posted lead off HTTP: bounded body, JSON or form, merged with the query string."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from starlette.requests import Request

from domain.errors import InvalidRequest

JSON_TYPES = ("application/json",)
FORM_TYPE = "application/x-www-form-urlencoded"
# Longest JSON number literal accepted. No lead field needs more, and converting a longer
# one is quadratic work chosen by the client (CPython refuses beyond 4,300 digits anyway).
MAX_NUMBER_LENGTH = 200


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


def _same(a: object, b: object) -> bool:
    if a == b and type(a) is type(b):
        return True
    # A query-string "7" and a JSON 7 are the same value posted two ways.
    return isinstance(a, int) and not isinstance(a, bool) and isinstance(b, str) and str(a) == b


def _merge(fields: dict[str, object], pairs: Iterable[tuple[str, object]]) -> dict[str, object]:
    for name, value in pairs:
        if name in fields:
            if not (_same(fields[name], value) or _same(value, fields[name])):
                raise InvalidRequest(
                    f"The field {name!r} was given twice with different values.",
                    reason="conflicting_values",
                    field=name,
                )
        else:
            fields[name] = value
    return fields


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _object_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    return _merge({}, pairs)


def _bounded(convert: Callable[[str], object]) -> Callable[[str], object]:
    """`convert` for number literals of at most MAX_NUMBER_LENGTH characters; the length is
    checked before any conversion."""

    def parse(literal: str) -> object:
        if len(literal) > MAX_NUMBER_LENGTH:
            raise InvalidRequest(
                f"A JSON number is longer than {MAX_NUMBER_LENGTH} characters.",
                reason="number_too_long",
                limit=MAX_NUMBER_LENGTH,
            )
        return convert(literal)

    return parse


_parse_int = _bounded(int)
_parse_float = _bounded(float)


def parse_json(body: bytes) -> dict[str, object]:
    try:
        value = json.loads(
            body,
            object_pairs_hook=_object_pairs,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except InvalidRequest:
        raise
    except RecursionError:
        raise InvalidRequest("The JSON body is nested too deeply.", reason="too_deep") from None
    except ValueError as error:  # JSONDecodeError, bad UTF-8, over-long integers
        raise InvalidRequest("The body is not valid JSON.", reason="malformed_json") from error
    if not isinstance(value, dict):
        raise InvalidRequest("The JSON body must be an object.", reason="not_an_object")
    return value


def parse_form(raw: bytes) -> list[tuple[str, str]]:
    try:
        text = raw.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "The form data is not valid UTF-8 URL encoding.", reason="malformed_form"
        ) from None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_fields(request: Request, limit: int) -> dict[str, object]:
    """Body fields (JSON object or form) merged with the query string's parameters."""
    body = await read_body(request, limit)
    kind = media_type(request)
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        fields = parse_json(body)
    elif kind == FORM_TYPE:
        fields = _merge({}, parse_form(body))
    elif not body.strip():
        fields = {}
    else:
        raise InvalidRequest(
            "Send the lead as application/json or application/x-www-form-urlencoded.",
            reason="unsupported_content_type",
        )
    query = request.scope.get("query_string", b"")
    return _merge(fields, parse_form(query)) if query else fields
