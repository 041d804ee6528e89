"""Answers in JSON, XML or plain text: `Accept` negotiation with q-values, the source's reply
format where `Accept` leaves the choice, and each format's rendering of one document."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import orjson
import pytest

from domain.replies import MAX_RANGES, SERVED, ReplyFormat, _cached_negotiate, negotiate, render

JSON, XML, TEXT = ReplyFormat.JSON, ReplyFormat.XML, ReplyFormat.TEXT


@pytest.mark.parametrize(
    ("accept", "default", "media"),
    [
        (None, JSON, "application/json"),
        (None, XML, "application/xml"),
        (None, TEXT, "text/plain"),
        ("", TEXT, "text/plain"),
        ("*/*", XML, "application/xml"),
        ("application/xml", JSON, "application/xml"),
        ("text/xml", JSON, "text/xml"),
        ("TEXT/PLAIN", JSON, "text/plain"),
        ("text/plain; charset=utf-8", JSON, "text/plain"),
        # q-values: the heaviest wins, whatever the order.
        ("application/json;q=0.5, text/plain", JSON, "text/plain"),
        (
            "text/plain;q=0.2, application/xml;q=0.8, application/json;q=0.4",
            TEXT,
            "application/xml",
        ),
        ("application/xml;q=0.9, */*;q=0.1", JSON, "application/xml"),
        # A named type beats a wildcard of the same weight, even the source's format.
        ("application/json, */*", XML, "application/json"),
        # A wildcard: the source's format among those it matches, else the first served.
        ("*/*;q=0.5", TEXT, "text/plain"),
        ("application/*", JSON, "application/json"),
        ("application/*", TEXT, "application/json"),
        ("application/*", XML, "application/xml"),
        ("text/*", JSON, "text/plain"),
        ("text/*", XML, "text/xml"),
        # The most specific range decides a type's weight: q=0 excludes it.
        ("application/*;q=0.9, application/json;q=0", JSON, "application/xml"),
        ("*/*, application/json;q=0", XML, "application/xml"),
        ("*/*, text/plain;q=0", TEXT, "application/json"),
        # Equal weights and specificity: the source's format, then JSON.
        ("application/xml, text/plain", TEXT, "text/plain"),
        ("text/plain, application/xml", JSON, "application/xml"),
        ("application/xml, application/json", XML, "application/xml"),
        ("application/xml, application/json", TEXT, "application/json"),
        # Nothing served, all excluded, or malformed: JSON, whatever the source's format.
        ("image/png", XML, "application/json"),
        ("application/json;q=0, application/xml;q=0, text/*;q=0", XML, "application/json"),
        ("text/html, application/xhtml+xml", TEXT, "application/json"),
        ("nonsense, ;;, /, a/", XML, "application/json"),
        # A q that is not a q-value excludes its range.
        (
            "application/xml;q=2, text/plain;q=abc, application/json;q=0.001",
            TEXT,
            "application/json",
        ),
        ("application/xml;Q=0.5", JSON, "application/xml"),
    ],
)
def test_negotiation(accept: str | None, default: ReplyFormat, media: str) -> None:
    assert negotiate(accept, default) == media


LEAD = {"lead_id": "c0ffee", "source_id": 1, "status": "received", "replayed": False}
ERROR = {
    "error": {
        "code": "method_not_allowed",
        "message": "GET is <not> allowed & so on.",
        "details": {"allowed": ["POST", "PUT"], "limit": 30.0, "field": None, "none": {}},
    }
}


def test_json_is_the_document() -> None:
    assert render("application/json", ERROR, "error") == orjson.dumps(ERROR)


@pytest.mark.parametrize("media", ["application/xml", "text/xml"])
def test_xml_is_the_document_as_elements(media: str) -> None:
    body = render(media, ERROR, "error")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><error><code>')
    root = ET.fromstring(body)
    assert root.tag == "error"
    assert [child.tag for child in root] == ["code", "message", "details"]
    assert root.findtext("message") == "GET is <not> allowed & so on."
    assert [item.text for item in root.iterfind("details/allowed/item")] == ["POST", "PUT"]
    assert root.findtext("details/limit") == "30.0"
    assert b"<limit>30.0</limit><field/><none/></details>" in body  # null and {}: empty
    lead = ET.fromstring(render(media, LEAD, "lead"))
    assert lead.tag == "lead"
    assert {child.tag: child.text for child in lead} == {
        "lead_id": "c0ffee",
        "source_id": "1",
        "status": "received",
        "replayed": "false",
    }


def test_text_is_one_name_value_line_per_value() -> None:
    assert render("text/plain", ERROR, "error").decode() == (
        "error.code=method_not_allowed\n"
        "error.message=GET is <not> allowed & so on.\n"
        "error.details.allowed.0=POST\n"
        "error.details.allowed.1=PUT\n"
        "error.details.limit=30.0\n"
        "error.details.field=\n"
    )
    assert render("text/plain", LEAD, "lead") == (
        b"lead_id=c0ffee\nsource_id=1\nstatus=received\nreplayed=false\n"
    )


def test_text_values_keep_to_their_line() -> None:
    document = {"error": {"message": "a\\b\r\nerror.code=forged"}}
    assert (
        render("text/plain", document, "error") == b"error.message=a\\\\b\\r\\nerror.code=forged\n"
    )


@pytest.mark.parametrize("media", list(SERVED))
def test_characters_a_format_cannot_hold_are_replaced_not_fatal(media: str) -> None:
    document = {"error": {"message": "x\x00y\x01z\ud800!\ufffe"}}
    body = render(media, document, "error")
    body.decode("utf-8")  # always UTF-8
    if SERVED[media] is XML:
        assert ET.fromstring(body).findtext("message") == "x\ufffdy\ufffdz\ufffd!\ufffd"
    elif SERVED[media] is TEXT:
        assert body == "error.message=x\x00y\x01z\ufffd!\ufffe\n".encode()
    else:  # JSON escapes it: `\ud800`
        assert json.loads(body) == document


def test_only_the_first_ranges_count_and_a_long_accept_is_not_kept() -> None:
    ignored = ", ".join(["image/png"] * MAX_RANGES + ["text/plain"])
    assert negotiate(ignored) == "application/json"
    assert negotiate(", ".join(["image/png"] * (MAX_RANGES - 1) + ["text/plain"])) == "text/plain"
    hostile = ", ".join(["*/*;q=0.5"] * 6000) + ", text/plain"  # 66 KB: refused by the server
    kept = _cached_negotiate.cache_info().currsize
    assert negotiate(hostile, TEXT) == "text/plain"
    assert _cached_negotiate.cache_info().currsize == kept
