"""HTTP protocol limits, answers given before a request reaches the application, the peer.

uvicorn's httptools protocol (its default) buffers a request's header section without any
limit, and its parser joins a header value piece by piece: a 120 MB header section held a
worker for half a minute, starving every other request on it. uvicorn also answers requests
its parser rejects with a plain-text 400, outside the error envelope.

`install()` adjusts uvicorn's HTTP/1.1 protocol classes in place, in whatever process imports
the application (`python -m uvicorn web.app:app`, `leads serve`, the container, each of
`--workers N`):

- httptools: a header section (request line and header fields) over `MAX_HEADER_BYTES` is
  refused with 431 `request_header_too_large` as soon as that many bytes have arrived without
  the section ending (at most one more read, 256 KiB, is parsed), or when a complete section
  is found to be larger;
- h11 (`UVICORN_HTTP=h11`): h11 enforces its own limit (`--h11-max-incomplete-event-size`,
  16 KiB by default); going over it is answered with the same 431;
- every request the parser rejects gets 400 `invalid_request` with reason `malformed_http`,
  and `--limit-concurrency` refusals get 503 `service_unavailable` with `Retry-After`, all in
  the error envelope.

- uvicorn's proxy headers (on by default: `X-Forwarded-For` believed from 127.0.0.1 and ::1,
  or from `--forwarded-allow-ips` / `FORWARDED_ALLOW_IPS`) are not applied: the client
  address is the TCP peer unless the peer is in `LEADS_TRUSTED_PROXIES`, decided by the service
  alone (domain/client_address.py), whatever command starts it. A uvicorn setting that asks for
  more is said once at start-up to be ignored.

A refused connection gets `Connection: close`; its write side is shut after the answer and
what the client still sends is read and dropped for up to `LINGER_S` seconds, so that the
client reads the answer instead of a connection reset.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable
from typing import Any

import uvicorn.config
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.protocols.http import h11_impl, httptools_impl

from domain.errors import ErrorCode
from web.errors import RETRY_AFTER_SECONDS, error_body

MAX_HEADER_BYTES = 64 * 1024
LINGER_S = 2.0

_HEADER_TOO_LARGE = error_body(
    ErrorCode.REQUEST_HEADER_TOO_LARGE,
    f"The request's header section is larger than {MAX_HEADER_BYTES} bytes.",
    {"limit": MAX_HEADER_BYTES},
)
_MALFORMED = error_body(
    ErrorCode.INVALID_REQUEST, "The request is not valid HTTP/1.1.", {"reason": "malformed_http"}
)
_OVER_CONCURRENCY = error_body(
    ErrorCode.SERVICE_UNAVAILABLE,
    "The server is at its concurrency limit; retry later.",
    {"reason": "concurrency_limit"},
)

# (class or module, attribute) → the value install() replaced; restored by uninstall().
_ORIGINALS: dict[tuple[object, str], Any] = {}
_ABSENT = object()


class _HeaderSectionTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose headers are too big."""


def _response(protocol: Any, status: int, body: bytes) -> bytes:
    phrase = http.HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in protocol.server_state.default_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _refuse(protocol: Any, too_large: bool) -> None:
    """Answer 431 or 400, then close; the connection reads nothing more into a request."""
    protocol._leads_refused = True
    transport = protocol.transport
    if transport.is_closing():
        return
    code = ErrorCode.REQUEST_HEADER_TOO_LARGE if too_large else ErrorCode.INVALID_REQUEST
    transport.write(
        _response(protocol, code.status, _HEADER_TOO_LARGE if too_large else _MALFORMED)
    )
    cycle = protocol.cycle
    if cycle is not None and not cycle.response_complete:
        # The error arrived in the body of a request the application is reading: it sees a
        # disconnect, and whatever it answers is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        transport.close()
    elif transport.can_write_eof():
        transport.write_eof()
        protocol.loop.call_later(LINGER_S, transport.close)
    else:
        transport.close()


def _patch(owner: object, name: str, replacement: Any) -> None:
    _ORIGINALS.setdefault((owner, name), getattr(owner, name, _ABSENT))
    setattr(owner, name, replacement)


def _original(owner: object, name: str) -> Any:
    return _ORIGINALS.get((owner, name), getattr(owner, name))


def _header_section_size(protocol: Any) -> int:
    # Request line and field lines as sent, give or take the separators' exact spelling.
    method = protocol.parser.get_method()
    return (
        len(method)
        + len(protocol.url)
        + 12
        + sum(len(name) + len(value) + 4 for name, value in protocol.headers)
    )


def _install_httptools() -> None:
    cls = httptools_impl.HttpToolsProtocol
    data_received = _original(cls, "data_received")
    on_headers_complete = _original(cls, "on_headers_complete")

    def guarded_data_received(self: Any, data: bytes) -> None:
        if self._leads_refused:
            return  # lingering after a refusal: drop what still arrives
        # An upper bound of the header section's size if it ends within this read.
        self._leads_bound = self._leads_header_bytes + len(data)
        data_received(self, data)
        scope = self.scope
        # uvicorn starts a request's scope when its first byte is parsed and sets its method
        # when its headers are complete: in between, the parser is inside a header section.
        if scope is not None and "method" not in scope and not self._leads_refused:
            self._leads_header_bytes += len(data)
            if self._leads_header_bytes > MAX_HEADER_BYTES:
                self.logger.warning("Invalid HTTP request received.")
                _refuse(self, too_large=True)
        elif self._leads_header_bytes:
            self._leads_header_bytes = 0

    def checked_on_headers_complete(self: Any) -> None:
        # Measured only when what arrived could hold that much (never for ordinary requests).
        if self._leads_bound > MAX_HEADER_BYTES and _header_section_size(self) > MAX_HEADER_BYTES:
            # The header section arrived whole within one read: refused all the same.
            self._leads_too_large = True
            raise _HeaderSectionTooLarge
        on_headers_complete(self)

    def send_400_response(self: Any, msg: str) -> None:
        _refuse(self, too_large=self._leads_too_large)

    for name, value in (
        ("_leads_refused", False),
        ("_leads_too_large", False),
        ("_leads_header_bytes", 0),
        ("_leads_bound", 0),
    ):
        _patch(cls, name, value)
    _patch(cls, "data_received", guarded_data_received)
    _patch(cls, "on_headers_complete", checked_on_headers_complete)
    _patch(cls, "send_400_response", send_400_response)


def _install_h11() -> None:
    cls = h11_impl.H11Protocol
    data_received = _original(cls, "data_received")

    def guarded_data_received(self: Any, data: bytes) -> None:
        if not self._leads_refused:
            data_received(self, data)

    def send_400_response(self: Any, msg: str) -> None:
        limit = self.config.h11_max_incomplete_event_size
        if limit is None:
            limit = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        # h11 gives up with "Receive buffer too long" when a header section outgrows it.
        _refuse(self, too_large=len(self.conn.trailing_data[0]) > limit)

    _patch(cls, "_leads_refused", False)
    _patch(cls, "data_received", guarded_data_received)
    _patch(cls, "send_400_response", send_400_response)


async def service_unavailable(scope: Any, receive: Any, send: Callable[[Any], Any]) -> None:
    """uvicorn's answer past `--limit-concurrency`, as an envelope with `Retry-After`."""
    await send(
        {
            "type": "http.response.start",
            "status": ErrorCode.SERVICE_UNAVAILABLE.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_OVER_CONCURRENCY)).encode("ascii")),
                (b"retry-after", RETRY_AFTER_SECONDS.encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _OVER_CONCURRENCY, "more_body": False})


# uvicorn's `forwarded_allow_ips` when nothing sets it.
_UVICORN_DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"


def without_proxy_headers(app: Any, trusted_hosts: list[str] | str = "") -> Any:
    """Stands in for uvicorn's ProxyHeadersMiddleware: the application, unwrapped."""
    hosts = trusted_hosts if isinstance(trusted_hosts, str) else ",".join(trusted_hosts)
    if hosts.replace(" ", "") != _UVICORN_DEFAULT_FORWARDED_ALLOW_IPS:
        logging.getLogger("uvicorn.error").warning(
            "uvicorn's forwarded_allow_ips (%s) is ignored: list your proxies' networks "
            "in LEADS_TRUSTED_PROXIES",
            hosts,
        )
    return app


def install() -> None:
    """Apply the limits and envelopes to uvicorn's protocols; calling it again changes nothing."""
    if _ORIGINALS:
        return
    _install_httptools()
    _install_h11()
    for module in (httptools_impl, h11_impl):
        _patch(module, "service_unavailable", service_unavailable)
    # uvicorn wraps the application after importing it, so this applies to the process that
    # imported it (`python -m uvicorn web.app:app`, `leads serve`, each of `--workers N`).
    _patch(uvicorn.config, "ProxyHeadersMiddleware", without_proxy_headers)


def uninstall() -> None:
    """uvicorn's protocols as they were (for measuring what `install()` costs)."""
    for (owner, name), value in _ORIGINALS.items():
        if value is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, value)
    _ORIGINALS.clear()


def is_installed() -> bool:
    return bool(_ORIGINALS)
