"""XML leads turned into posted fields, and the documents that are refused before anything is
expanded or fetched."""

from __future__ import annotations

import pytest

from domain.errors import InvalidRequest
from domain.posted import MAX_XML_DEPTH, MAX_XML_ELEMENTS, parse_xml, posted_fields


def test_child_elements_are_fields_nested_ones_objects_repeated_ones_lists() -> None:
    document = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<Lead xmlns="urn:example" id="ignored"><email>jane@example.com</email>'
        b"<source_id>7</source_id><first_name/><tags><tag>a</tag><tag>b</tag><tag>c</tag></tags>"
        b"<utm><source>x</source></utm></Lead>"
    )
    assert parse_xml(document) == {
        "email": "jane@example.com",
        "source_id": "7",
        "first_name": "",
        "tags": {"tag": ["a", "b", "c"]},
        "utm": {"source": "x"},
    }


def test_a_declared_encoding_is_honoured() -> None:
    document = '<?xml version="1.0" encoding="ISO-8859-1"?><lead><city>Zürich</city></lead>'
    assert parse_xml(document.encode("latin-1")) == {"city": "Zürich"}


def test_xml_in_a_form_field_joins_the_other_fields() -> None:
    body = b"xml=%3Clead%3E%3Cemail%3Ea%40example.com%3C%2Femail%3E%3C%2Flead%3E&source_id=1"
    fields = posted_fields(body, "application/x-www-form-urlencoded", b"utm=q")
    assert fields == {"email": "a@example.com", "source_id": "1", "utm": "q"}
    with pytest.raises(InvalidRequest) as error:
        posted_fields(b"xml=%3Ca%2F%3E&xml=%3Cb%2F%3E", "application/x-www-form-urlencoded")
    assert error.value.details == {"reason": "conflicting_values", "field": "xml"}


HOSTILE = {
    "billion laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10)
            for i in range(1, 10)
        )
        + b"]><lead><email>&lol9;</email></lead>",
        "forbidden_xml",
    ),
    "external entity": (
        b'<!DOCTYPE lead [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><lead><email>&xxe;</email></lead>',
        "forbidden_xml",
    ),
    "external DTD": (b'<!DOCTYPE lead SYSTEM "http://127.0.0.1:9/x.dtd"><lead/>', "forbidden_xml"),
    "deep nesting": (b"<a>" * 10_000 + b"</a>" * 10_000, "too_many_fields"),
    "not well-formed": (b"<lead><email>a@example.com</lead>", "malformed_xml"),
    "invalid UTF-8": (b"<lead><email>\xff\xfe</email></lead>", "malformed_xml"),
    "wrong encoding declaration": (
        '<?xml version="1.0" encoding="UTF-16"?><lead><city>Zürich</city></lead>'.encode(),
        "malformed_xml",
    ),
}


@pytest.mark.parametrize(("document", "reason"), HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_documents_are_refused_with_their_reason(document: bytes, reason: str) -> None:
    # The reason says which guard stopped the document (DTDs and entities refused before any
    # expansion, the element limit before the whole nesting is built): no clock needed.
    with pytest.raises(InvalidRequest) as error:
        parse_xml(document)
    assert error.value.details == {"reason": reason}


def test_limits_of_depth_and_elements() -> None:
    # The root, then up to MAX_XML_DEPTH levels of elements under it.
    deep = b"<a>" * (MAX_XML_DEPTH + 2) + b"x" + b"</a>" * (MAX_XML_DEPTH + 2)
    with pytest.raises(InvalidRequest) as error:
        parse_xml(deep)
    assert error.value.details == {"reason": "too_deep"}
    just_deep = b"<a>" * (MAX_XML_DEPTH + 1) + b"x" + b"</a>" * (MAX_XML_DEPTH + 1)
    assert parse_xml(just_deep)
    wide = b"<lead>" + b"<f>x</f>" * MAX_XML_ELEMENTS + b"</lead>"
    assert parse_xml(wide) == {"f": ["x"] * MAX_XML_ELEMENTS}
    with pytest.raises(InvalidRequest):
        parse_xml(b"<lead>" + b"<f>x</f>" * (MAX_XML_ELEMENTS + 1) + b"</lead>")
