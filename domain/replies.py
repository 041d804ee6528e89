"""The formats answers are written in: JSON (the default), XML or plain text.

An answer is one document, a JSON object: a lead's fields, or the error envelope
`{"error": {code, message, details}}`. Its XML is that object as elements under a root, `lead`
for a lead and `error` for an error (`<error><code/><message/><details/></error>`); a list's
items are `<item>` elements, `null` an empty element, booleans `true`/`false`. Its plain text
is one `name=value` line per value, names joined with `.` (`error.details.reason=…`), list
items numbered from 0 (`error.details.allowed.0=POST`), `null` an empty value; a backslash, CR
and LF in a value are written `\\\\`, `\\r`, `\\n`. A character that XML or UTF-8 cannot hold
(a control character in XML, an unpaired surrogate) is written as U+FFFD.

Which format: the request's `Accept` header, by its q-values (RFC 9110 §12.5.1), among
`application/json`, `application/xml`, `text/xml` and `text/plain`; of the equally preferred
ones, the most specifically named, then the source's `reply_format`, then JSON. No `Accept`
header, or `*/*`, gets the source's `reply_format` (JSON where the source is not known yet);
an `Accept` naming none of them gets JSON. Only its first MAX_RANGES media ranges count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from xml.sax.saxutils import escape

import orjson

# Media ranges of an `Accept` header that count: the rest are ignored (real clients send a few).
MAX_RANGES = 32
# A `q` parameter's weight (0 to 1, three decimals); anything else excludes the range.
_QUALITY = re.compile(r"0(?:\.\d{0,3})?|1(?:\.0{0,3})?")


class ReplyFormat(StrEnum):
    JSON = "json"
    XML = "xml"
    TEXT = "text"

    @property
    def media_type(self) -> str:
        """The media type it is served as when `Accept` does not name one."""
        return next(media for media, served in SERVED.items() if served is self)


REPLY_FORMATS: tuple[str, ...] = tuple(ReplyFormat)
# The media types answers are served as, in the order that breaks the last tie.
SERVED: Mapping[str, ReplyFormat] = {
    "application/json": ReplyFormat.JSON,
    "application/xml": ReplyFormat.XML,
    "text/plain": ReplyFormat.TEXT,
    "text/xml": ReplyFormat.XML,
}
# What a served media type is sent as in `Content-Type`.
CONTENT_TYPES: Mapping[str, str] = {
    media: f"{media}; charset=utf-8" if media.startswith("text/") else media for media in SERVED
}


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """The first MAX_RANGES media ranges of an `Accept` value: (type, subtype, weight)."""
    ranges = []
    for element in accept.split(",", MAX_RANGES)[:MAX_RANGES]:
        media, *parameters = element.split(";")
        kind, slash, subtype = media.strip().lower().partition("/")
        if not slash or not kind or not subtype:
            continue
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                weight = float(value) if _QUALITY.fullmatch(value) else 0.0
        ranges.append((kind, subtype, weight))
    return ranges


def _preference(media: str, ranges: list[tuple[str, str, float]]) -> tuple[float, int]:
    """(weight, specificity) of `media` under the most specific range that matches it."""
    kind, _, subtype = media.partition("/")
    best = (0.0, -1)
    for range_kind, range_subtype, weight in ranges:
        if range_kind == kind and range_subtype == subtype:
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif range_kind == "*" and range_subtype == "*":
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (weight, specificity)
    return best


def negotiate(accept: str | None, default: ReplyFormat = ReplyFormat.JSON) -> str:
    """The media type to answer a request with `accept` in, for a source whose reply format
    is `default` (JSON before the source is known)."""
    if accept is not None and len(accept) > _CACHED_LENGTH:
        return _negotiate(accept, default)  # not worth keeping: no client sends one so long
    return _cached_negotiate(accept, default)


def _negotiate(accept: str | None, default: ReplyFormat) -> str:
    if not accept or accept.strip() == "*/*":
        return default.media_type
    ranges = _ranges(accept)
    best, best_rank = ReplyFormat.JSON.media_type, (0.0, -1, False)
    for media, reply_format in SERVED.items():
        weight, specificity = _preference(media, ranges)
        rank = (weight, specificity, reply_format is default)
        if weight > 0 and rank > best_rank:
            best, best_rank = media, rank
    return best


# Clients send the same few `Accept` values: each is parsed once (a hostile one of 64 KiB
# costs at most MAX_RANGES ranges, and is never kept).
_CACHED_LENGTH = 256
_cached_negotiate = lru_cache(maxsize=256)(_negotiate)

# What XML 1.0 cannot hold (control characters, unpaired surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n"})


def _scalar(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return json.dumps(value)
    return str(value)


def _xml(name: str, value: object, out: list[str]) -> None:
    # Names are the service's own (field names, `details` keywords): XML names all.
    if isinstance(value, Mapping):
        children: list[str] = []
        for key, item in value.items():
            _xml(key, item, children)
        out.append(f"<{name}>{''.join(children)}</{name}>" if children else f"<{name}/>")
    elif isinstance(value, list | tuple):
        items: list[str] = []
        for item in value:
            _xml("item", item, items)
        out.append(f"<{name}>{''.join(items)}</{name}>" if items else f"<{name}/>")
    else:
        text = escape(_NOT_XML.sub("\ufffd", _scalar(value)))
        out.append(f"<{name}>{text}</{name}>" if text else f"<{name}/>")


def _text(name: str, value: object, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _text(f"{name}.{key}" if name else str(key), item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _text(f"{name}.{index}", item, out)
    else:
        out.append(f"{name}={_scalar(value).translate(_TEXT_ESCAPES)}")


def render(media: str, document: Mapping[str, object], root: str) -> bytes:
    """`document` (a JSON object) as `media` (one of SERVED); `root` names XML's root element
    (a document of one member named `root`, the error envelope, is that member's element)."""
    reply_format = SERVED[media]
    if reply_format is ReplyFormat.JSON:
        try:
            return orjson.dumps(document)
        except orjson.JSONEncodeError:
            # Request text echoed back may hold a lone surrogate (a JSON `\ud800`), which has
            # no UTF-8 form: escaped as JSON allows instead of failing the answer.
            return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()
    if reply_format is ReplyFormat.XML:
        out = ['<?xml version="1.0" encoding="UTF-8"?>']
        inner = document[root] if list(document) == [root] else document
        _xml(root, inner, out)
        return "".join(out).encode()
    lines: list[str] = []
    _text("", document, lines)
    return _SURROGATE.sub("\ufffd", "".join(f"{line}\n" for line in lines)).encode()
