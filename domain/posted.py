"""Posted fields: a body (JSON object or form) and query parameters merged into one mapping.

Pure: it turns bytes already read into field names and values. Whatever carries a lead (an
HTTP body, a JSON line, a CSV row) ends up as such a mapping, which `parse_submission` types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from domain.errors import InvalidRequest

JSON_TYPES = ("application/json",)
FORM_TYPE = "application/x-www-form-urlencoded"
# Longest JSON number literal accepted. No lead field needs more, and converting a longer
# one is quadratic work chosen by the client (CPython refuses beyond 4,300 digits anyway).
MAX_NUMBER_LENGTH = 200


def _same(a: object, b: object) -> bool:
    if a == b and type(a) is type(b):
        return True
    # A query-string "7" and a JSON 7 are the same value posted two ways.
    return isinstance(a, int) and not isinstance(a, bool) and isinstance(b, str) and str(a) == b


def merge_fields(
    fields: dict[str, object], pairs: Iterable[tuple[str, object]]
) -> dict[str, object]:
    """`fields` plus `pairs`; a name given twice must carry the same value both times."""
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
    return merge_fields({}, pairs)


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


def parse_json(body: bytes | str) -> dict[str, object]:
    """A JSON object's members; anything else (or a name repeated with another value) is
    an InvalidRequest with its reason."""
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
    """The name/value pairs of URL-encoded form data (also a query string), in order."""
    try:
        text = raw.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "The form data is not valid UTF-8 URL encoding.", reason="malformed_form"
        ) from None


def posted_fields(body: bytes, media_type: str, query: bytes = b"") -> dict[str, object]:
    """Body fields (JSON object or form, by `media_type`) merged with the query string's."""
    if media_type in JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        fields = parse_json(body)
    elif media_type == FORM_TYPE:
        fields = merge_fields({}, parse_form(body))
    elif not body.strip():
        fields = {}
    else:
        raise InvalidRequest(
            "Send the lead as application/json or application/x-www-form-urlencoded.",
            reason="unsupported_content_type",
        )
    return merge_fields(fields, parse_form(query)) if query else fields
