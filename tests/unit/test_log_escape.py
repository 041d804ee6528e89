"""Request-derived text in log lines: escaped so that no line can be ended or forged."""

from __future__ import annotations

import logging

import pytest
from starlette.types import Receive, Scope, Send

from web.errors import UnexpectedErrorMiddleware
from web.log_escape import log_safe

FORGED = "2026-01-01 00:00:00,000 ERROR leads.web forged line"


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("/api/leads/acme", "/api/leads/acme"),
        ("/api/leads/bücher", "/api/leads/bücher"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("a\tb", "a\\tb"),
        ("a\x00b\x1f\x7f", "a\\x00b\\x1f\\x7f"),
        ("next\x85line", "next\\x85line"),  # NEL, a C1 control
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
        ("\u202eevil", "\\u202eevil"),  # right-to-left override
        ("lone \ud800", "lone \\ud800"),  # not even encodable as UTF-8
        ("\U000e0001", "\\U000e0001"),
        ("back\\slash", "back\\\\slash"),
        ("\\n", "\\\\n"),  # a literal backslash-n is not mistaken for an escaped newline
    ],
)
def test_escapes(text: str, escaped: str) -> None:
    assert log_safe(text) == escaped


def test_no_escaped_text_holds_a_non_printable_character() -> None:
    everything = "".join(map(chr, range(0x110000)))
    assert log_safe(everything).isprintable()


def test_non_strings_are_formatted_then_escaped() -> None:
    assert log_safe(ValueError("bad\nthing")) == "bad\\nthing"


async def test_the_unexpected_error_line_cannot_forge_a_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def exploding(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    sent: list[object] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "headers": [],
        "method": "POST",
        "path": f"/api/leads/x\n{FORGED}\r\x00",
    }
    with caplog.at_level(logging.ERROR, logger="leads.web"):
        await UnexpectedErrorMiddleware(exploding)(scope, receive, send)

    (record,) = caplog.records
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    assert line.endswith(f"/api/leads/x\\n{FORGED}\\r\\x00")
    assert sent[0]["status"] == 500  # type: ignore[index]
