"""Hostile requests against a real uvicorn process, written byte by byte on a socket.

Paths and Host headers that cannot be stored or mapped unambiguously, attacker-sized numbers,
clients that vanish mid-body or send too slowly, oversized or malformed header sections, and
log injection: each is answered with a documented error envelope (never a 500), writes
nothing, and leaves the worker free for other clients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from domain.replies import CONTENT_TYPES, render
from infrastructure import migrate
from infrastructure.local_postgres import free_port
from infrastructure.settings import to_asyncpg_url
from tests.support import ROOT, Catalog, CatalogSource, Service, running_service

HOST = "leads.hostile.test"


@dataclass(frozen=True)
class Target:
    service: Service
    database_url: str
    acme: CatalogSource  # mapped at HOST/api/leads/acme
    brightpath: CatalogSource  # mapped at HOST/api/leads/brightpath

    def leads_of(self, source: CatalogSource) -> int:
        async def count() -> int:
            engine = create_async_engine(to_asyncpg_url(self.database_url))
            try:
                async with engine.connect() as connection:
                    found = await connection.execute(
                        text("SELECT count(*) FROM leads WHERE source_id = :s"),
                        {"s": source.source_id},
                    )
                    return int(found.scalar_one())
            finally:
                await engine.dispose()

        return asyncio.run(count())


@pytest.fixture(scope="module")
def target(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    url = new_database()

    async def prepare() -> tuple[CatalogSource, CatalogSource]:
        await migrate.upgrade(url)
        engine = create_async_engine(to_asyncpg_url(url))
        try:
            catalog = Catalog(engine)
            acme, brightpath = await catalog.source(), await catalog.source()
            await catalog.mapping(acme.source_id, HOST, "/api/leads/acme")
            await catalog.mapping(brightpath.source_id, HOST, "/api/leads/brightpath")
            return acme, brightpath
        finally:
            await engine.dispose()

    acme, brightpath = asyncio.run(prepare())
    log_path = tmp_path_factory.mktemp("hostile-requests") / "uvicorn.log"
    env = {"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    with running_service(url, log_path=log_path, env=env) as service:
        yield Target(service, url, acme, brightpath)


def connect(service: Service, timeout_s: float = 10) -> socket.socket:
    host, port = service.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout_s)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def error(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/json", self.body
        error: dict[str, object] = json.loads(self.body)["error"]
        assert set(error) == {"code", "message", "details"}
        return error

    @property
    def details(self) -> dict[str, object]:
        details = self.error["details"]
        assert isinstance(details, dict)
        return details


class _Buffered:
    """One buffered reader for every answer on a connection (pipelined answers included)."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def makefile(self, *args: object, **kwargs: object) -> object:
        return self

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)

    def close(self) -> None:
        """Each answer closes its reader; the connection's stays open for the next one."""


def read_answer(sock: socket.socket | _Buffered) -> Answer:
    response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
    response.begin()
    return Answer(response.status, response.headers, response.read())


def exchange(service: Service, head: str, body: bytes = b"") -> Answer:
    """Sends `head` (request line and header lines, without the blank line) and `body`."""
    with connect(service) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        return read_answer(sock)


def post(
    service: Service,
    target: str,
    body: bytes,
    content_type: str = "application/json",
    host_lines: tuple[str, ...] = ("Host: 127.0.0.1",),
) -> Answer:
    head = "\r\n".join(
        [
            f"POST {target} HTTP/1.1",
            *host_lines,
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
    )
    return exchange(service, head, body)


def lead(**fields: object) -> bytes:
    return json.dumps({"email": "hostile@example.com", **fields}).encode()


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoded", ["%00", "%0A", "%0D", "%09", "%1F", "%7F", "a%00b"])
def test_control_characters_in_the_path_are_refused_and_nothing_is_stored(
    target: Target, encoded: str
) -> None:
    stored = target.leads_of(target.acme)
    answer = post(target.service, f"/api/leads/{encoded}", lead(source_id=target.acme.source_id))
    assert answer.status == 400, answer.body
    assert answer.error["code"] == "invalid_request"
    assert answer.details == {"reason": "control_characters", "field": "path"}
    assert target.leads_of(target.acme) == stored


def test_dot_segments_do_not_reach_another_sources_posting_url(target: Target) -> None:
    stored = target.leads_of(target.brightpath)
    answer = post(
        target.service,
        "/api/leads/acme/../brightpath",
        lead(),
        host_lines=(f"Host: {HOST}",),
    )
    assert answer.status == 400, answer.body
    assert answer.details == {"reason": "dot_segments", "field": "path"}
    assert target.leads_of(target.brightpath) == stored


@pytest.mark.parametrize("encoded", ["acme%2F..%2Fbrightpath", "acme%2f..%2fbrightpath"])
def test_an_encoded_slash_does_not_reach_another_sources_posting_url(
    target: Target, encoded: str
) -> None:
    stored = target.leads_of(target.brightpath)
    answer = post(target.service, f"/api/leads/{encoded}", lead(), host_lines=(f"Host: {HOST}",))
    assert answer.status == 400, answer.body
    assert answer.details == {"reason": "encoded_slash", "field": "path"}
    assert target.leads_of(target.brightpath) == stored


def test_the_posting_url_as_written_still_maps(target: Target) -> None:
    answer = post(
        target.service,
        "/api/leads/brightpath/",
        lead(email="mapped@example.com"),
        host_lines=(f"Host: {HOST}",),
    )
    assert answer.status == 201, answer.body
    assert json.loads(answer.body)["source_id"] == target.brightpath.source_id


# --- Host headers ---------------------------------------------------------------------------


def test_duplicate_host_headers_are_refused(target: Target) -> None:
    stored = target.leads_of(target.acme)
    answer = post(
        target.service,
        "/api/leads/acme",
        lead(email="twohosts@example.com"),
        host_lines=(f"Host: {HOST}", "Host: elsewhere.example.com"),
    )
    assert answer.status == 400, answer.body
    assert answer.error["code"] == "invalid_request"
    assert answer.details == {"reason": "duplicate_host", "field": "host"}
    assert target.leads_of(target.acme) == stored


@pytest.mark.parametrize("port", ["65536", "99999", "80x", "9" * 5000])
def test_a_host_port_that_cannot_exist_is_refused(target: Target, port: str) -> None:
    answer = post(
        target.service,
        "/api/leads/acme",
        lead(source_id=target.acme.source_id),
        host_lines=(f"Host: {HOST}:{port}",),
    )
    assert answer.status == 400, answer.body
    assert answer.details == {"reason": "invalid_port", "field": "host"}


# --- attacker-sized numbers ---------------------------------------------------------------

HUGE = "0" * 5000 + "1"


@pytest.mark.parametrize(
    ("target_path", "body"),
    [
        ("/api/leads", json.dumps({"source_id": HUGE, "email": "n@example.com"}).encode()),
        (f"/api/leads?source_id={HUGE}", lead()),
    ],
    ids=["json-string", "query-parameter"],
)
def test_a_source_id_of_thousands_of_digits_is_malformed(
    target: Target, target_path: str, body: bytes
) -> None:
    answer = post(target.service, target_path, body)
    assert answer.status == 400, answer.body
    assert answer.error["code"] == "invalid_source"
    assert answer.details == {"reason": "malformed"}


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        ("1" + "0" * 5000, "number_too_long"),
        ("9" * 201, "number_too_long"),
        ("0." + "5" * 5000, "number_too_long"),
        (HUGE, "malformed_json"),  # leading zeros are not JSON
    ],
    ids=["one-then-zeros", "just-over-the-limit", "long-fraction", "zeros-then-one"],
)
def test_a_json_number_of_thousands_of_digits_is_refused(
    target: Target, literal: str, reason: str
) -> None:
    answer = post(target.service, "/api/leads", b'{"source_id":' + literal.encode() + b"}")
    assert answer.status == 400, answer.body
    assert answer.error["code"] == "invalid_request"
    assert answer.details["reason"] == reason


# --- logs -----------------------------------------------------------------------------------

FORGED = "2026-01-01 00:00:00,000 ERROR leads.web forged-by-the-client"


@pytest.mark.parametrize("prefix", ["%0A", "%00%0A", "%0D%0A", "%E2%80%A8"])
def test_a_path_cannot_forge_a_log_line(target: Target, prefix: str) -> None:
    forged_path = "/api/leads/x" + prefix + FORGED.replace(" ", "%20")
    logged_before = len(target.service.logs())
    post(target.service, forged_path, lead(source_id=target.acme.source_id))
    post(target.service, forged_path, b'{"broken json')
    lines = target.service.logs()[logged_before:].splitlines()
    assert not [line for line in lines if line.startswith(FORGED)]
    assert not [line for line in lines if "Traceback" in line]


# --- clients that vanish ------------------------------------------------------------------


def counter(service: Service, outcome: str, code: str) -> float:
    metrics = httpx.get(service.base_url + "/metrics", timeout=10).text
    sample = f'leads_ingest_requests_total{{code="{code}",outcome="{outcome}"}}'
    found = re.search(rf"^{re.escape(sample)} (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def test_a_client_that_disconnects_mid_body_is_counted_as_aborted_not_as_a_bug(
    target: Target,
) -> None:
    logged_before = len(target.service.logs())
    aborted = counter(target.service, "aborted", "client_disconnected")
    failed = counter(target.service, "failed", "internal_error")
    stored = target.leads_of(target.acme)
    body = lead(source_id=target.acme.source_id, email=f"{uuid.uuid4().hex}@example.com")
    head = (
        "POST /api/leads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with connect(target.service) as sock:
        sock.sendall(head.encode() + body[: len(body) // 2])

    def counted() -> tuple[float, float]:
        return (
            counter(target.service, "aborted", "client_disconnected"),
            counter(target.service, "failed", "internal_error"),
        )

    wait_for(lambda: counted() != (aborted, failed), "the request is counted")
    assert counted() == (aborted + 1, failed)
    assert target.leads_of(target.acme) == stored
    logged = target.service.logs()[logged_before:]
    assert "ERROR" not in logged and "Traceback" not in logged
    about_it = [line for line in logged.splitlines() if "connection closed before" in line]
    assert len(about_it) == 1 and " INFO " in about_it[0], logged


# --- the header section: size limit, malformed requests -------------------------------------

MAX_HEADER_BYTES = 64 * 1024
HUGE_HEADER_BYTES = 120 * 1024 * 1024


@dataclass
class HugeHeader:
    """What a client sending a 120 MB header section got: bytes sent before the answer."""

    sent: int = 0
    answer: Answer | None = None
    error: BaseException | None = None


def send_huge_header(service: Service, outcome: HugeHeader, started: threading.Event) -> None:
    """Sends one never-ending header field, 1 MiB at a time, until the server answers."""
    piece = b"a" * (1 << 20)
    try:
        with connect(service, timeout_s=60) as sock:
            sock.sendall(b"POST /api/leads HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
            sock.setblocking(False)
            while outcome.sent < HUGE_HEADER_BYTES:
                readable, _, _ = select.select([sock], [sock], [], 60)
                if readable:
                    break
                if outcome.sent >= 8 * len(piece):
                    started.set()
                with contextlib.suppress(BlockingIOError):
                    outcome.sent += sock.send(piece)
            started.set()
            sock.setblocking(True)
            sock.settimeout(60)
            outcome.answer = read_answer(sock)
    except BaseException as error:
        outcome.error = error
    finally:
        started.set()


def test_a_huge_header_section_is_refused_at_once_and_the_worker_stays_free(
    target: Target,
) -> None:
    outcome, started = HugeHeader(), threading.Event()
    sender = threading.Thread(target=send_huge_header, args=(target.service, outcome, started))
    sender.start()
    try:
        started.wait(60)
        # The same single worker serves a lead meanwhile (the timeout detects a stall).
        response = httpx.post(
            target.service.base_url + "/api/leads",
            json={"source_id": target.acme.source_id, "email": f"{uuid.uuid4().hex}@x.org"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
    finally:
        sender.join(90)
    assert outcome.error is None, outcome.error
    assert outcome.answer is not None
    assert outcome.answer.status == 431
    assert outcome.answer.headers["connection"] == "close"
    assert outcome.answer.error["code"] == "request_header_too_large"
    assert outcome.answer.details == {"limit": MAX_HEADER_BYTES}
    # Answered long before the end: what was sent is what the sockets' buffers took.
    assert outcome.sent < HUGE_HEADER_BYTES // 4, outcome.sent
    print(f"bytes sent before the 431: {outcome.sent}")


def header_lines(total: int) -> str:
    """Header fields of about `total` bytes in all, each under 1 KiB."""
    return "".join(f"X-Filler-{i}: {'v' * 1000}\r\n" for i in range(total // 1020))


def test_a_header_section_just_under_the_limit_is_served(target: Target) -> None:
    head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header_lines(60 * 1024)
    answer = exchange(target.service, head + "Connection: close")
    assert answer.status == 200


@pytest.mark.parametrize(
    "head",
    [
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header_lines(100 * 1024).rstrip(),
        "GET /healthz?q=" + "a" * (70 * 1024) + " HTTP/1.1\r\nHost: 127.0.0.1",
    ],
    ids=["many-fields", "long-url"],
)
def test_a_header_section_over_the_limit_sent_at_once_is_refused(target: Target, head: str) -> None:
    answer = exchange(target.service, head)
    assert answer.status == 431
    assert answer.error["code"] == "request_header_too_large"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /api/leads HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /api/leads HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /api/leads HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /api/leads HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n{}",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # TLS to a plain port
    ],
    ids=[
        "control-character-in-header",
        "negative-content-length",
        "content-length-and-chunked",
        "two-content-lengths",
        "unknown-version",
        "http2-preface",
        "tls-client-hello",
    ],
)
def test_a_request_the_parser_rejects_gets_the_envelope(
    target: Target, request_bytes: bytes
) -> None:
    with connect(target.service) as sock:
        sock.sendall(request_bytes)
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.headers["connection"] == "close"
    assert answer.error["code"] == "invalid_request"
    assert answer.details == {"reason": "malformed_http"}


# A body the parser rejects once the header section, with its Accept, is complete.
BAD_CHUNK = (
    "POST /api/leads HTTP/1.1\r\nHost: x\r\nAccept: {}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"
)


def refused_in(service: Service, accept: str, huge_header: bool = False) -> Answer:
    request = BAD_CHUNK.format(accept).encode()
    if huge_header:  # refused within its header section, after its Accept arrived
        request = request.replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
    with connect(service) as sock:
        with contextlib.suppress(ConnectionError):
            sock.sendall(request)
        return read_answer(sock)


@pytest.mark.parametrize("media", ["application/xml", "text/plain"])
@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_the_servers_own_refusals_follow_accept_once_the_header_section_is_whole(
    target: Target, h11_service: Service, http: str, media: str
) -> None:
    service = target.service if http == "httptools" else h11_service
    in_json = refused_in(service, "application/json")
    answer = refused_in(service, media)
    assert (answer.status, in_json.status) == (400, 400)
    assert answer.headers["content-type"] == CONTENT_TYPES[media]
    assert answer.body == render(media, json.loads(in_json.body), "error")
    # Within the header section its headers are not known yet, the Accept included: JSON.
    too_large = refused_in(service, media, huge_header=True)
    assert too_large.status == 431 and too_large.error["code"] == "request_header_too_large"


def test_requests_on_one_connection_are_unaffected(target: Target) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with connect(target.service) as sock:
        reader = _Buffered(sock)
        sock.sendall(request * 3)  # pipelined
        answers = [read_answer(reader) for _ in range(3)]
        sock.sendall(request)  # and once more, kept alive
        answers.append(read_answer(reader))
    assert [a.status for a in answers] == [200] * 4


@pytest.fixture(scope="module")
def h11_service(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The same service on uvicorn's other HTTP/1.1 implementation (`UVICORN_HTTP=h11`)."""
    log_path = tmp_path_factory.mktemp("hostile-h11") / "uvicorn.log"
    env = {"UVICORN_HTTP": "h11", "LOG_LEVEL": "INFO"}
    with running_service(target.database_url, log_path=log_path, env=env) as service:
        yield service


def test_h11_refuses_a_huge_header_section_with_the_same_431(h11_service: Service) -> None:
    outcome, started = HugeHeader(), threading.Event()
    send_huge_header(h11_service, outcome, started)
    assert outcome.error is None, outcome.error
    assert outcome.answer is not None and outcome.answer.status == 431
    assert outcome.answer.error["code"] == "request_header_too_large"
    assert outcome.sent < HUGE_HEADER_BYTES // 4, outcome.sent


def test_h11_answers_a_malformed_request_with_the_envelope(h11_service: Service) -> None:
    with connect(h11_service) as sock:
        sock.sendall(b"POST /api/leads HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.details == {"reason": "malformed_http"}


def refused_header_and_malformed_request(base_url: str) -> tuple[Answer, Answer]:
    host, port = base_url.removeprefix("http://").split(":")
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (200 * 1024) + b"\r\n\r\n"
    answers = []
    for request in (big, b"POST /api/leads HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            answers.append(read_answer(sock))
    return answers[0], answers[1]


def assert_limits_apply(base_url: str) -> None:
    too_large, malformed = refused_header_and_malformed_request(base_url)
    assert (too_large.status, too_large.error["code"]) == (431, "request_header_too_large")
    assert (malformed.status, malformed.details) == (400, {"reason": "malformed_http"})


def test_the_limits_apply_to_every_worker(target: Target) -> None:
    with running_service(target.database_url, "--workers", "2") as service:
        for _ in range(4):  # connections are spread over the workers
            assert_limits_apply(service.base_url)


def test_the_limits_apply_under_leads_serve(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    log_path = tmp_path_factory.mktemp("leads-serve") / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": new_database()},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base_url + "/readyz"), "leads serve is ready", timeout_s=60)
        assert_limits_apply(base_url)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# --- slow clients: LEADS_REQUEST_TIMEOUT_S ----------------------------------------------------

SLOW_TIMEOUT_S = 1.0
# How late the answer may come: the timer's second, a busy machine's scheduling, the read.
MARGIN_S = 4.0
MEDIA = ("application/xml", "application/json")


@pytest.fixture(scope="module", params=["httptools", "h11"])
def slow_service(
    request: pytest.FixtureRequest, target: Target, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    log_path = tmp_path_factory.mktemp(f"slow-{request.param}") / "uvicorn.log"
    env = {"UVICORN_HTTP": request.param, "LEADS_REQUEST_TIMEOUT_S": str(SLOW_TIMEOUT_S)}
    with running_service(target.database_url, log_path=log_path, env=env) as service:
        yield service


def head(
    body: bytes, host: str = "127.0.0.1", keep_alive: bool = False, accept: str | None = None
) -> bytes:
    lines = [
        "POST /api/leads HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if accept is not None:
        lines.append(f"Accept: {accept}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def a_lead(target: Target) -> bytes:
    return lead(source_id=target.acme.source_id, email=f"{uuid.uuid4().hex}@example.com")


def timed_out(sock: socket.socket, started: float, media: str = "application/json") -> Answer:
    """The 408 the server sends in `media`, in time, followed by the end of the connection."""
    answer = read_answer(sock)
    elapsed = time.monotonic() - started
    assert answer.status == 408, answer.body
    if media == "application/json":
        assert answer.error["code"] == "request_timeout"
        assert answer.details == {"timeout_s": SLOW_TIMEOUT_S}
    else:
        assert answer.headers["content-type"] == CONTENT_TYPES[media]
        error = {
            "code": "request_timeout",
            "message": f"The request did not arrive within {SLOW_TIMEOUT_S:g} s of its first byte.",
            "details": {"timeout_s": SLOW_TIMEOUT_S},
        }
        assert answer.body == render(media, {"error": error}, "error")
    assert answer.headers["connection"] == "close"
    assert SLOW_TIMEOUT_S * 0.9 <= elapsed < SLOW_TIMEOUT_S + MARGIN_S, elapsed
    assert sock.recv(1) == b""
    return answer


def test_a_header_section_sent_a_byte_at_a_time_is_answered_408(
    slow_service: Service, target: Target
) -> None:
    stored = target.leads_of(target.acme)
    request = head(a_lead(target))
    with connect(slow_service) as sock:
        started = time.monotonic()
        sock.sendall(request[:10])
        for byte in request[10:20]:
            time.sleep(0.05)
            sock.sendall(bytes([byte]))
        timed_out(sock, started)
    assert target.leads_of(target.acme) == stored


def test_a_body_that_stops_arriving_is_answered_408_and_nothing_is_stored(
    slow_service: Service, target: Target
) -> None:
    stored = target.leads_of(target.acme)
    body = a_lead(target)
    with connect(slow_service) as sock:
        started = time.monotonic()
        # Its header section arrived: answered in the format it accepts.
        sock.sendall(head(body, accept="text/plain") + body[:5])
        timed_out(sock, started, "text/plain")
    assert target.leads_of(target.acme) == stored


def test_many_slow_clients_are_all_closed_and_the_worker_serves_others_meanwhile(
    slow_service: Service, target: Target
) -> None:
    body = a_lead(target)
    sockets = [connect(slow_service) for _ in range(50)]
    try:
        started = time.monotonic()
        for number, sock in enumerate(sockets):
            # Half stop in the header section (answered in JSON: their Accept is unknown),
            # half in the body (answered in the XML they accept).
            request = head(body, accept="application/xml")
            sock.sendall(request[:20] if number % 2 else request + body[:5])
        served = httpx.post(
            f"{slow_service.base_url}/api/leads",
            content=a_lead(target),
            headers={"content-type": "application/json"},
            timeout=MARGIN_S,
        )
        assert served.status_code == 201, served.text
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            answers = list(
                pool.map(
                    lambda number, sock: timed_out(sock, started, MEDIA[number % 2]),
                    *zip(*enumerate(sockets), strict=True),
                )
            )
        assert len(answers) == len(sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_requests_that_arrive_in_time_are_served_on_a_connection_older_than_the_limit(
    slow_service: Service, target: Target
) -> None:
    with connect(slow_service) as sock:
        reader = _Buffered(sock)
        opened = time.monotonic()
        statuses = []
        while time.monotonic() - opened < SLOW_TIMEOUT_S * 2.5:
            body = a_lead(target)
            request = head(body, keep_alive=True) + body
            half = len(request) // 2
            sock.sendall(request[:half])
            time.sleep(SLOW_TIMEOUT_S / 3)  # slow, but in time
            sock.sendall(request[half:])
            answer = read_answer(reader)
            statuses.append(answer.status)
            assert json.loads(answer.body)["replayed"] is False
    assert statuses == [201] * len(statuses) and len(statuses) >= 5, statuses
