"""Posted fields: a body (JSON object, form or XML document) and query parameters merged into
one mapping.

Pure: it turns bytes already read into field names and values. Whatever carries a lead (an
HTTP body, a JSON line, a CSV row) ends up as such a mapping, which `parse_submission` types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_document

from domain.errors import InvalidRequest

JSON_TYPES = ("application/json",)
FORM_TYPE = "application/x-www-form-urlencoded"
XML_TYPES = ("application/xml", "text/xml")
# A form field holding a whole XML lead (as some lead platforms post it).
XML_FORM_FIELD = "xml"
# Deepest nesting and most elements an XML lead may have (JSON's depth limit, and more
# elements than any lead has fields).
MAX_XML_DEPTH = 32
MAX_XML_ELEMENTS = 1000
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
        return parse_qsl(raw.decode(), keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest(
            "The form data is not valid UTF-8 URL encoding.", reason="malformed_form"
        ) from None


def parse_xml(body: bytes | str) -> dict[str, object]:
    """An XML lead: each child element of the root (any name) is a field named by its local
    name; an element without children gives its text, one with children an object of them, and
    a name repeated a list. XML attributes are not read. DTDs, entities and external
    references are refused before anything is expanded or fetched."""
    try:
        root = parse_xml_document(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise InvalidRequest(
            "XML with a DTD, entities or external references is not accepted.",
            reason="forbidden_xml",
        ) from None
    except (ParseError, ValueError):  # not well-formed, not in its declared encoding
        raise InvalidRequest("The body is not well-formed XML.", reason="malformed_xml") from None
    for count, _ in enumerate(root.iter()):
        if count > MAX_XML_ELEMENTS:
            raise InvalidRequest(
                f"The XML document has more than {MAX_XML_ELEMENTS} elements.",
                reason="too_many_fields",
            )
    return _xml_children(root, 1)


def _xml_children(element: Element, depth: int) -> dict[str, object]:
    if depth > MAX_XML_DEPTH:
        raise InvalidRequest("The XML document is nested too deeply.", reason="too_deep")
    values: dict[str, list[object]] = {}
    for child in element:
        name = child.tag.rpartition("}")[2]  # `{namespace}local` → `local`
        value = _xml_children(child, depth + 1) if len(child) else child.text or ""
        values.setdefault(name, []).append(value)
    return {name: found[0] if len(found) == 1 else found for name, found in values.items()}


def _form_fields(body: bytes) -> dict[str, object]:
    """A form's fields; a field named `xml` holds a whole XML lead, whose fields join them."""
    pairs = parse_form(body)
    documents = [value for name, value in pairs if name == XML_FORM_FIELD]
    if not documents:
        return merge_fields({}, pairs)
    if len(documents) > 1:
        raise InvalidRequest(
            "The form has more than one xml field.",
            reason="conflicting_values",
            field=XML_FORM_FIELD,
        )
    others = [(name, value) for name, value in pairs if name != XML_FORM_FIELD]
    return merge_fields(parse_xml(documents[0].encode("utf-8")), others)


def posted_fields(body: bytes, media_type: str, query: bytes = b"") -> dict[str, object]:
    """Body fields (JSON object, form or XML, by `media_type`) merged with the query string's."""
    if media_type in JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        fields = parse_json(body)
    elif media_type == FORM_TYPE:
        fields = _form_fields(body)
    elif media_type in XML_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+xml")
    ):
        fields = parse_xml(body)
    elif not body.strip():
        fields = {}
    else:
        raise InvalidRequest(
            "Send the lead as application/json, application/x-www-form-urlencoded or "
            "application/xml.",
            reason="unsupported_content_type",
        )
    return merge_fields(fields, parse_form(query)) if query else fields
