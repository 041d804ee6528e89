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
- a request whose header section and body have not both arrived `request_timeout_s` seconds
  (`LEADS_REQUEST_TIMEOUT_S`) after its first byte is answered 408 `request_timeout` while
  nothing of a response is sent yet, and closed; uvicorn's own keep-alive timeout covers the
  idle time between requests, and nothing covers a request once it has arrived;
- every request the parser rejects gets 400 `invalid_request` with reason `malformed_http`,
  and `--limit-concurrency` refusals get 503 `service_unavailable` with `Retry-After`, all in
  the error envelope: in the format the request's `Accept` asks for once its header section
  has arrived whole, in JSON before (its headers are not known yet);
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

import h11
import uvicorn.config
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from starlette.datastructures import Headers
from uvicorn.protocols.http import h11_impl, httptools_impl

from domain.errors import ErrorCode
from domain.replies import CONTENT_TYPES, ReplyFormat
from web.errors import RETRY_AFTER_SECONDS, error_body, reply_media

MAX_HEADER_BYTES = 64 * 1024
LINGER_S = 2.0
_request_timeout_s = 30.0

# (class or module, attribute) → the value install() replaced; restored by uninstall().
_ORIGINALS: dict[tuple[object, str], Any] = {}
_ABSENT = object()


class _HeaderSectionTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose headers are too big."""


def _response(protocol: Any, code: ErrorCode, message: str, details: dict[str, object]) -> bytes:
    # The request's headers are known once its header section is complete: then it has a
    # cycle whose response is not complete yet.
    cycle = protocol.cycle
    media = ReplyFormat.JSON.media_type
    if cycle is not None and not cycle.response_complete:
        media = reply_media(Headers(raw=cycle.scope["headers"]))
    body = error_body(code, message, details, media)
    phrase = http.HTTPStatus(code.status).phrase
    lines = [f"HTTP/1.1 {code.status} {phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in protocol.server_state.default_headers]
    lines += [
        b"content-type: " + CONTENT_TYPES[media].encode("ascii"),
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _refuse(protocol: Any, code: ErrorCode, message: str, details: dict[str, object]) -> None:
    """Answer `code` unless a response has begun, then close; nothing more is read into a
    request."""
    protocol._leads_refused = True
    _cancel_timer(protocol)
    transport = protocol.transport
    if transport.is_closing():
        return
    cycle = protocol.cycle
    if cycle is None or not cycle.response_started:
        transport.write(_response(protocol, code, message, details))
    if cycle is not None and not cycle.response_complete:
        # The request's body was still arriving: the application sees a disconnect, and
        # whatever it answers is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        transport.close()
    elif transport.can_write_eof():
        transport.write_eof()
        protocol.loop.call_later(LINGER_S, transport.close)
    else:
        transport.close()


def _refuse_malformed(protocol: Any, too_large: bool) -> None:
    if too_large:
        message = f"The request's header section is larger than {MAX_HEADER_BYTES} bytes."
        _refuse(protocol, ErrorCode.REQUEST_HEADER_TOO_LARGE, message, {"limit": MAX_HEADER_BYTES})
    else:
        message = "The request is not valid HTTP/1.1."
        _refuse(protocol, ErrorCode.INVALID_REQUEST, message, {"reason": "malformed_http"})


def set_request_timeout(seconds: float) -> None:
    """The time a request has to arrive, header section and body, from its first byte."""
    global _request_timeout_s
    _request_timeout_s = seconds


def _start_timer(protocol: Any) -> None:
    _cancel_timer(protocol)
    protocol._leads_timer = protocol.loop.call_later(_request_timeout_s, _timed_out, protocol)


def _cancel_timer(protocol: Any) -> None:
    if protocol._leads_timer is not None:
        protocol._leads_timer.cancel()
        protocol._leads_timer = None


def _timed_out(protocol: Any) -> None:
    protocol._leads_timer = None
    protocol.logger.warning("Request not received within %.3g s: closed.", _request_timeout_s)
    message = f"The request did not arrive within {_request_timeout_s:g} s of its first byte."
    _refuse(protocol, ErrorCode.REQUEST_TIMEOUT, message, {"timeout_s": _request_timeout_s})


def _patch(owner: object, name: str, replacement: Any) -> None:
    _ORIGINALS.setdefault((owner, name), getattr(owner, name, _ABSENT))
    setattr(owner, name, replacement)


def _patch_all(protocol: type, **replacements: Any) -> None:
    """A protocol class's patches, with the state and clean-up every protocol gets: refused or
    not, the request timer, which `connection_lost` cancels: nothing is left to time out."""
    connection_lost = _original(protocol, "connection_lost")

    def timed_connection_lost(self: Any, exc: Exception | None) -> None:
        _cancel_timer(self)
        connection_lost(self, exc)

    _patch(protocol, "_leads_refused", False)
    _patch(protocol, "_leads_timer", None)
    _patch(protocol, "connection_lost", timed_connection_lost)
    for name, replacement in replacements.items():
        _patch(protocol, name, replacement)


def _original(owner: object, name: str) -> Any:
    return _ORIGINALS.get((owner, name), getattr(owner, name))


def _install_httptools() -> None:
    cls = httptools_impl.HttpToolsProtocol
    data_received = _original(cls, "data_received")
    on_headers_complete = _original(cls, "on_headers_complete")
    on_message_begin = _original(cls, "on_message_begin")
    on_message_complete = _original(cls, "on_message_complete")

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
                _refuse_malformed(self, too_large=True)
        elif self._leads_header_bytes:
            self._leads_header_bytes = 0

    def checked_on_headers_complete(self: Any) -> None:
        # Measured only when what arrived could hold that much (never for ordinary requests):
        # request line and field lines as sent, give or take the separators' exact spelling.
        if self._leads_bound > MAX_HEADER_BYTES and (
            len(self.parser.get_method())
            + len(self.url)
            + 12
            + sum(len(name) + len(value) + 4 for name, value in self.headers)
            > MAX_HEADER_BYTES
        ):
            # The header section arrived whole within one read: refused all the same.
            self._leads_too_large = True
            raise _HeaderSectionTooLarge
        on_headers_complete(self)

    def send_400_response(self: Any, msg: str) -> None:
        _refuse_malformed(self, too_large=self._leads_too_large)

    def timed_on_message_begin(self: Any) -> None:
        _start_timer(self)
        on_message_begin(self)

    def timed_on_message_complete(self: Any) -> None:
        _cancel_timer(self)
        on_message_complete(self)

    _patch_all(
        cls,
        _leads_too_large=False,
        _leads_header_bytes=0,
        _leads_bound=0,
        data_received=guarded_data_received,
        on_headers_complete=checked_on_headers_complete,
        send_400_response=send_400_response,
        on_message_begin=timed_on_message_begin,
        on_message_complete=timed_on_message_complete,
    )


def _install_h11() -> None:
    cls = h11_impl.H11Protocol
    data_received = _original(cls, "data_received")

    def guarded_data_received(self: Any, data: bytes) -> None:
        if self._leads_refused:
            return
        data_received(self, data)
        if self._leads_refused:
            return
        # h11 has no event for a request's first byte: a request is arriving while its body
        # is, or while part of a header section waits in h11's buffer.
        state = self.conn.their_state
        arriving = state is h11.SEND_BODY or (
            state is h11.IDLE and bool(self.conn.trailing_data[0])
        )
        if not arriving:
            _cancel_timer(self)
        elif self._leads_timer is None:
            _start_timer(self)

    def send_400_response(self: Any, msg: str) -> None:
        size = self.config.h11_max_incomplete_event_size
        limit = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE if size is None else size
        # h11 gives up with "Receive buffer too long" when a header section outgrows it.
        _refuse_malformed(self, too_large=len(self.conn.trailing_data[0]) > limit)

    _patch_all(cls, data_received=guarded_data_received, send_400_response=send_400_response)


async def service_unavailable(scope: Any, receive: Any, send: Callable[[Any], Any]) -> None:
    """uvicorn's answer past `--limit-concurrency`, as an envelope with `Retry-After`."""
    media = reply_media(Headers(scope=scope))
    body = error_body(
        ErrorCode.SERVICE_UNAVAILABLE,
        "The server is at its concurrency limit; retry later.",
        {"reason": "concurrency_limit"},
        media,
    )
    await send(
        {
            "type": "http.response.start",
            "status": ErrorCode.SERVICE_UNAVAILABLE.status,
            "headers": [
                (b"content-type", CONTENT_TYPES[media].encode("ascii")),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"retry-after", RETRY_AFTER_SECONDS.encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def without_proxy_headers(app: Any, trusted_hosts: list[str] | str = "") -> Any:
    """Stands in for uvicorn's ProxyHeadersMiddleware: the application, unwrapped."""
    hosts = trusted_hosts if isinstance(trusted_hosts, str) else ",".join(trusted_hosts)
    if hosts.replace(" ", "") != "127.0.0.1,::1":  # uvicorn's default: nothing asked for
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
    # uvicorn wraps the application after importing it, so this replacement is in time.
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
