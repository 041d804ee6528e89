"""Test helpers: catalog rows inserted with plain SQL (unique per test), a real service process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.idempotency import content_digest, derived_key
from infrastructure.local_postgres import free_port

ROOT = Path(__file__).resolve().parents[1]

# CI (CI=true) is the deep run: it tries every generated example; a run elsewhere a quarter.
DEEP = os.environ.get("CI") == "true"


def examples(deep: int) -> int:
    """How many examples a property-based test generates: `deep` in CI."""
    return deep if DEEP else deep // 4


def restore_ctrl_c() -> None:
    """Python's own SIGINT handler where SIGINT is ignored: a run started in the background of a
    script ignores it, and so would every process the tests start and send Ctrl-C to."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# Tests that need what only POSIX systems have: SIGTERM/SIGSTOP semantics, process groups,
# `pgrep`, `unshare`, /proc, PgBouncer, a pseudo-terminal, getrusage. Windows skips them,
# saying so; the modules they need are imported inside them (tests/static/test_collection.py).
posix_only = pytest.mark.skipif(
    sys.platform == "win32",
    reason="POSIX only: needs signals (SIGTERM/SIGSTOP), process groups, pgrep, unshare, "
    "PgBouncer, a pseudo-terminal or getrusage",
)


@dataclass(frozen=True)
class CatalogSource:
    source_id: int
    source_key: str | None
    offer_id: int
    market_id: int
    vertical_id: int
    code: str


@dataclass
class Catalog:
    """Inserts catalog rows with plain SQL, each with unique codes so tests never collide."""

    engine: AsyncEngine

    async def market(self, phone_region: str | None = "US") -> int:
        return await self._insert(
            "INSERT INTO markets (code, name, phone_region) VALUES (:code, 'Market', :region) "
            "RETURNING market_id",
            region=phone_region,
        )

    async def vertical(self) -> int:
        return await self._insert(
            "INSERT INTO verticals (code, name) VALUES (:code, 'Vertical') RETURNING vertical_id"
        )

    async def offer(
        self, market_id: int | None = None, vertical_id: int | None = None, active: bool = True
    ) -> int:
        return await self._insert(
            "INSERT INTO offers (code, name, market_id, vertical_id, is_active) "
            "VALUES (:code, 'Offer', :market_id, :vertical_id, :active) RETURNING offer_id",
            market_id=market_id or await self.market(),
            vertical_id=vertical_id or await self.vertical(),
            active=active,
        )

    async def source(
        self,
        *,
        key: str | None = "",
        offer_id: int | None = None,
        active: bool = True,
        phone_region: str | None = "US",
    ) -> CatalogSource:
        """A source of a fresh offer; `key=""` means: give it a unique key."""
        if offer_id is None:
            offer_id = await self.offer(market_id=await self.market(phone_region))
        if key == "":
            key = f"key-{uuid.uuid4().hex[:12]}"
        code = f"src-{uuid.uuid4().hex[:12]}"
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    text(
                        "INSERT INTO sources (code, name, offer_id, source_key, is_active) "
                        "VALUES (:code, 'Source', :offer_id, :key, :active) "
                        "RETURNING source_id, (SELECT market_id FROM offers WHERE offer_id = "
                        ":offer_id), (SELECT vertical_id FROM offers WHERE offer_id = :offer_id)"
                    ),
                    {"code": code, "offer_id": offer_id, "key": key, "active": active},
                )
            ).one()
        return CatalogSource(row[0], key, offer_id, row[1], row[2], code)

    async def mapping(
        self, source_id: int, hostname: str, path_prefix: str = "/", active: bool = True
    ) -> int:
        return await self._insert(
            "INSERT INTO source_http_mappings (source_id, hostname, path_prefix, is_active) "
            "VALUES (:source_id, :hostname, :path_prefix, :active) RETURNING mapping_id",
            source_id=source_id,
            hostname=hostname,
            path_prefix=path_prefix,
            active=active,
        )

    async def execute(self, sql: str, **params: object) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(sql), params)

    async def intake_source(
        self,
        *,
        require_key: bool = False,
        networks: Sequence[str] = (),
        aliases: Mapping[str, str] | None = None,
        key: str | None = "",
    ) -> CatalogSource:
        """A source of a fresh offer that asks what the arguments say of its leads."""
        source = await self.source(key=key)
        await self.execute(
            "UPDATE sources SET require_key = :require_key, allowed_networks = "
            "CAST(:networks AS cidr[]), field_aliases = CAST(:aliases AS jsonb) "
            "WHERE source_id = :id",
            require_key=require_key,
            networks=list(networks),
            aliases=json.dumps(aliases or {}),
            id=source.source_id,
        )
        return source

    async def lead(self) -> uuid.UUID:
        """A lead inserted with plain SQL for a new source, client context included."""
        source = await self.source()
        lead_id = uuid.uuid4()
        await self.execute(
            "INSERT INTO leads (lead_id, source_id, offer_id, market_id, vertical_id, "
            "idempotency_key, idempotency_key_origin, email, client_ip, user_agent) VALUES "
            "(:lead_id, :source_id, :offer_id, :market_id, :vertical_id, 'k', 'client', "
            "'a@b.example', '198.51.100.7', 'curl/8.5.0')",
            lead_id=lead_id,
            source_id=source.source_id,
            offer_id=source.offer_id,
            market_id=source.market_id,
            vertical_id=source.vertical_id,
        )
        return lead_id

    async def _insert(self, sql: str, **params: object) -> int:
        params.setdefault("code", f"c-{uuid.uuid4().hex[:12]}")
        async with self.engine.begin() as connection:
            value: int = (await connection.execute(text(sql), params)).scalar_one()
        return value


def unique_host() -> str:
    return f"h{uuid.uuid4().hex[:10]}.example.com"


@dataclass
class Service:
    """A `python -m uvicorn web.app:app` process; its output (the logs) goes to `log_path`."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextmanager
def running_service(
    database_url: str,
    *uvicorn_args: str,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/readyz",
    timeout_s: float = 30,
    host: str = "127.0.0.1",
) -> Iterator[Service]:
    """The spec's serve command on a free port of `host`, until `ready_path` answers 200."""
    port = free_port()
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix="leads-service-")) / f"uvicorn-{port}.log"
    argv = [sys.executable, "-m", "uvicorn", "web.app:app", "--host", host]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*argv, "--port", str(port), *uvicorn_args],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    authority = f"[{host}]" if ":" in host else host
    service = Service(process, f"http://{authority}:{port}", log_path)
    try:
        _wait_until_up(service, ready_path, timeout_s)
        yield service
    finally:
        service.stop()


def _wait_until_up(service: Service, ready_path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"uvicorn exited early:\n{service.logs()}")
        try:
            if httpx.get(service.base_url + ready_path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"uvicorn did not come up in {timeout_s:g} s:\n{service.logs()}")


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    """A file under `tmp_path` holding `content` (text as UTF-8); its path as a string."""
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def leads(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`leads ARGV…` in this process: its exit status, stdout and stderr."""
    from cli.main import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def derive_idempotency_key(
    fields: Mapping[str, str | None],
    *,
    normalized_email: str | None,
    normalized_phone: str | None,
    is_test: bool,
    attributes: Mapping[str, object],
) -> str:
    """The derived key of a lead's content, composed as `NewLead.create` composes it."""
    digest = content_digest(
        fields,
        normalized_email=normalized_email,
        normalized_phone=normalized_phone,
        is_test=is_test,
        attributes=attributes,
    )
    return derived_key(digest, normalized_email=normalized_email, normalized_phone=normalized_phone)
