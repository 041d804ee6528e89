"""uvicorn's protocols with web.http_limits installed, fed bytes directly (no sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.server import ServerState

from web import http_limits
from web.http_limits import MAX_HEADER_BYTES


class FakeTransport:
    """Records what the protocol writes and whether it shut the connection."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.eof_written = False
        self.closed = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        assert not self.eof_written and not self.closed, "write after the end"
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def status(self) -> int | None:
        if not self.written:
            return None
        return int(bytes(self.written).split(b" ", 2)[1])

    @property
    def error(self) -> dict[str, Any]:
        head, _, body = bytes(self.written).partition(b"\r\n\r\n")
        assert b"content-type: application/json" in head
        assert b"connection: close" in head
        error: dict[str, Any] = json.loads(body)["error"]
        return error


class App:
    """An ASGI app that records the requests that reached it and answers 204."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    http_limits.install()
    yield
    http_limits.install()


def protocol_for(kind: str, app: App) -> tuple[Any, FakeTransport]:
    config = Config(app=app, http=kind, lifespan="off", log_level="critical")
    config.load()
    cls = httptools_impl.HttpToolsProtocol if kind == "httptools" else h11_impl.H11Protocol
    protocol = cls(config=config, server_state=ServerState(), app_state={})
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_header_section_is_refused_once_it_passes_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_limits, "LINGER_S", 0)
    app = App()
    protocol, transport = protocol_for("httptools", app)
    protocol.data_received(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Huge: ")
    piece = b"a" * 1024
    fed = 0
    while transport.status is None:
        protocol.data_received(piece)
        fed += len(piece)
        assert fed <= MAX_HEADER_BYTES + len(piece), "still buffering past the limit"
    assert transport.status == 431
    assert transport.error == {
        "code": "request_header_too_large",
        "message": f"The request's header section is larger than {MAX_HEADER_BYTES} bytes.",
        "details": {"limit": MAX_HEADER_BYTES},
    }
    # Lingering: the write side is shut, what still arrives is dropped, then it closes.
    assert transport.eof_written and not transport.closed
    answered = bytes(transport.written)
    protocol.data_received(piece * 100)
    protocol.data_received(b"\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert bytes(transport.written) == answered
    assert app.paths == []
    assert transport.closed  # after LINGER_S, here 0


async def test_a_whole_oversized_header_section_in_one_read_is_refused() -> None:
    app = App()
    protocol, transport = protocol_for("httptools", app)
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(700))
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    await settle()
    assert transport.status == 431
    assert app.paths == []


async def test_requests_under_the_limit_reach_the_app_one_after_another() -> None:
    app = App()
    protocol, transport = protocol_for("httptools", app)
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(500))  # ~55 KiB
    request = b"GET /ok HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"
    for _ in range(3):
        for start in range(0, len(request), 4096):
            protocol.data_received(request[start : start + 4096])
        await settle()
    assert app.paths == ["/ok"] * 3
    assert bytes(transport.written).count(b"HTTP/1.1 204") == 3


@pytest.mark.parametrize("kind", ["httptools", "h11"])
async def test_a_malformed_request_gets_the_envelope_then_lingers(kind: str) -> None:
    protocol, transport = protocol_for(kind, App())
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    assert transport.status == 400
    assert transport.error["details"] == {"reason": "malformed_http"}
    assert transport.eof_written and not transport.closed
    protocol.data_received(b"more garbage\r\n\r\n")  # dropped, not answered twice
    assert bytes(transport.written).count(b"HTTP/1.1 4") == 1


async def test_h11_over_its_own_limit_answers_431() -> None:
    protocol, transport = protocol_for("h11", App())
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: ")
    while transport.status is None:
        protocol.data_received(b"a" * 4096)
    assert transport.status == 431


async def test_a_malformed_body_of_a_request_in_progress_closes_at_once() -> None:
    class Reading(App):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            self.paths.append(scope["path"])
            self.last = await receive()
            self.last = await receive()

    app = Reading()
    protocol, transport = protocol_for("httptools", app)
    protocol.data_received(
        b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
    )
    await settle()
    protocol.data_received(b"zz\r\n")  # not a chunk size
    await settle()
    assert transport.status == 400 and transport.closed
    assert app.last == {"type": "http.disconnect"}


async def test_over_the_concurrency_limit_is_a_503_envelope() -> None:
    assert httptools_impl.service_unavailable is http_limits.service_unavailable
    assert h11_impl.service_unavailable is http_limits.service_unavailable
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await http_limits.service_unavailable({"type": "http", "headers": []}, None, send)
    start, body = sent
    assert start["status"] == 503
    assert (b"retry-after", b"1") in start["headers"]
    assert (b"content-type", b"application/json") in start["headers"]
    assert json.loads(body["body"])["error"]["code"] == "service_unavailable"
    sent.clear()
    scope = {"type": "http", "headers": [(b"accept", b"text/plain")]}
    await http_limits.service_unavailable(scope, None, send)
    start, body = sent
    assert (b"content-type", b"text/plain; charset=utf-8") in start["headers"]
    assert body["body"].startswith(b"error.code=service_unavailable\n")


def test_install_is_idempotent_and_uninstall_restores_uvicorn() -> None:
    patched = httptools_impl.HttpToolsProtocol.data_received
    http_limits.install()
    assert httptools_impl.HttpToolsProtocol.data_received is patched
    http_limits.uninstall()
    assert not http_limits.is_installed()
    assert "_leads_refused" not in vars(httptools_impl.HttpToolsProtocol)
    assert httptools_impl.HttpToolsProtocol.data_received is not patched
    assert httptools_impl.service_unavailable is not http_limits.service_unavailable
    http_limits.install()
    assert http_limits.is_installed()
