"""Database statements and round trips per request, counted two independent ways.

The app runs in this process (`web.app.create_app`, driven through `httpx.ASGITransport`) with a
pool of one connection that goes through a small PostgreSQL wire-protocol proxy:

* asyncpg's query logger counts what the code asks for: each query run (statements)
  plus `begin`, `commit`, `rollback`;
* the proxy counts what really crosses the network: a *round trip* is one client flight, i.e.
  client bytes sent after the server last answered (so a pipelined Bind/Execute/Sync is one
  round trip, as is a `Parse/Describe/Sync` prepare); it also decodes the client's messages so
  the report can say what each round trip was.

Nothing here needs a server restart, `pg_stat_statements` or access to the server log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
PROTOCOL_3 = 196608


@dataclass
class WireRecorder:
    """Client flights seen by the proxy since the last `reset()`."""

    flights: list[list[str]] = field(default_factory=list)

    def reset(self) -> None:
        self.flights = []


class _ClientStream:
    """Splits the client→server byte stream into whole messages and describes each one."""

    def __init__(self) -> None:
        self.buffer = b""
        self.started = False
        self.statements: dict[str, str] = {}

    def feed(self, data: bytes) -> list[tuple[str, bytes, bytes | None]]:
        """Messages completed by `data`: (description, raw bytes, proxy's own reply or None).

        A message with a reply (SSLRequest, GSSENCRequest) is answered "N" by the proxy and not
        forwarded, so the proxied connection is always plain and decodable.
        """
        self.buffer += data
        out: list[tuple[str, bytes, bytes | None]] = []
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return out
                (length,) = struct.unpack("!I", self.buffer[:4])
                if len(self.buffer) < length:
                    return out
                raw, self.buffer = self.buffer[:length], self.buffer[length:]
                (code,) = struct.unpack("!I", raw[4:8])
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    out.append(("SSLRequest (answered N by the proxy)", raw, b"N"))
                else:
                    self.started = code == PROTOCOL_3
                    out.append(("StartupMessage", raw, None))
                continue
            if len(self.buffer) < 5:
                return out
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return out
            raw, self.buffer = self.buffer[: 1 + length], self.buffer[1 + length :]
            out.append((self._describe(chr(raw[0]), raw[5:]), raw, None))

    def _describe(self, kind: str, body: bytes) -> str:
        def cstrings(n: int) -> list[str]:
            return [part.decode("utf-8", "replace") for part in body.split(b"\0", n)[:n]]

        if kind == "Q":
            return "Query " + _short(cstrings(1)[0])
        if kind == "P":
            name, query = cstrings(2)
            self.statements[name] = query
            return f"Parse {name or '<unnamed>'} " + _short(query)
        if kind == "B":
            _portal, name = cstrings(2)
            return "Bind " + _short(self.statements.get(name, name or "<unnamed>"))
        names = {
            "E": "Execute",
            "S": "Sync",
            "D": "Describe",
            "H": "Flush",
            "C": "Close",
            "X": "Terminate",
            "p": "Password",
        }
        return names.get(kind, f"message {kind!r}")


def _short(sql: str, limit: int = 72) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"


class WireProxy:
    """Listens on 127.0.0.1:<port>, forwards to the real server, records client flights."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.recorder = WireRecorder()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        server_r, server_w = await asyncio.open_connection(*self.upstream)
        state = {"server_spoke": True}
        stream = _ClientStream()

        async def client_to_server() -> None:
            while data := await client_r.read(65536):
                if state["server_spoke"]:
                    self.recorder.flights.append([])
                    state["server_spoke"] = False
                forward: list[bytes] = []
                for description, raw, reply in stream.feed(data):
                    self.recorder.flights[-1].append(description)
                    if reply is None:
                        forward.append(raw)
                    else:
                        client_w.write(reply)
                        state["server_spoke"] = True
                if forward:
                    server_w.write(b"".join(forward))
                    await server_w.drain()
            server_w.close()

        async def server_to_client() -> None:
            while data := await server_r.read(65536):
                state["server_spoke"] = True
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            server_w.close()
            client_w.close()
            self._tasks.discard(task)


def _via_proxy(database_url: str, port: int) -> str:
    parts = urlsplit(database_url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def count(database_url: str, source_key: str, nonce: str) -> dict[str, Any]:
    """Statements and round trips of one new lead and one replay, warm and cold."""
    import httpx
    from sqlalchemy import event

    from bench.workload import HEADERS, lead_body
    from infrastructure.settings import Settings
    from web.app import create_app

    parts = urlsplit(database_url)
    proxy = WireProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    # One pooled connection, so every request after the first finds its statements prepared.
    settings = Settings(
        database_url=_via_proxy(database_url, proxy.port), db_pool_size=1, db_timeout_s=10.0
    )
    app = create_app(lambda: settings)
    events: dict[str, int] = {}
    statements: list[str] = []

    def on_query(record: Any) -> None:
        # asyncpg's query logger: every query the driver connection runs, BEGIN and
        # COMMIT included (the service executes on the pooled asyncpg connection).
        verb = record.query.split(None, 1)[0].rstrip(";").lower()
        if verb in ("begin", "commit", "rollback"):
            events[verb] = events.get(verb, 0) + 1
        else:
            events["statements"] = events.get("statements", 0) + 1
            statements.append(_short(record.query))

    def on_checkout(dbapi_connection: Any, *_rest: object) -> None:
        dbapi_connection.driver_connection.add_query_logger(on_query)

    async def one(client: httpx.AsyncClient, key: str, expected: int) -> dict[str, Any]:
        events.clear()
        statements.clear()
        proxy.recorder.reset()
        response = await client.post(
            "/api/leads", content=lead_body(key, source_key), headers=HEADERS
        )
        if response.status_code != expected:
            raise RuntimeError(f"expected {expected}, got {response.status_code}: {response.text}")
        await asyncio.sleep(0.01)  # asyncpg hands records to query loggers via call_soon
        flights = list(proxy.recorder.flights)
        sql_round_trips = sum(events.get(k, 0) for k in ("begin", "statements", "commit"))
        return {
            "statements": events.get("statements", 0),
            "begin": events.get("begin", 0),
            "commit": events.get("commit", 0),
            "rollback": events.get("rollback", 0),
            "round_trips": sql_round_trips + events.get("rollback", 0),
            "wire_round_trips": len(flights),
            "wire": [" + ".join(_compact(flight)) for flight in flights],
            "sql": list(statements),
        }

    try:
        async with app.router.lifespan_context(app):
            engine = app.state.application.engine.sync_engine
            event.listen(engine, "checkout", on_checkout)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1"
            ) as client:
                cold_new = await one(client, f"{nonce}-rt-cold", 201)
                cold_replay = await one(client, f"{nonce}-rt-cold", 200)
                new = [await one(client, f"{nonce}-rt-{i}", 201) for i in range(3)]
                replay = [await one(client, f"{nonce}-rt-{i}", 200) for i in range(3)]
    finally:
        await proxy.close()

    def worst(samples: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = max(samples, key=lambda s: (s["wire_round_trips"], s["round_trips"]))
        stable = all(
            (s["wire_round_trips"], s["round_trips"])
            == (chosen["wire_round_trips"], chosen["round_trips"])
            for s in samples
        )
        return {**chosen, "samples": len(samples), "stable": stable}

    return {
        "new_lead": worst(new),
        "replay": worst(replay),
        "cold_new_lead": {k: v for k, v in cold_new.items() if k != "wire"},
        "cold_replay": {k: v for k, v in cold_replay.items() if k != "wire"},
        "method": "asyncpg query logger (statements + BEGIN/COMMIT/ROLLBACK) and a "
        "wire-protocol proxy counting client flights; app in-process, pool of one connection",
    }


def _compact(flight: list[str]) -> list[str]:
    """`Bind X + Execute + Sync` reads better than the raw message list."""
    out: list[str] = []
    for message in flight:
        if message in ("Execute", "Sync", "Describe", "Flush") and out:
            out[-1] += f"/{message}"
        else:
            out.append(message)
    return out


if __name__ == "__main__":
    import sys

    print(json.dumps(asyncio.run(count(sys.argv[1], sys.argv[2], "manual")), indent=2))
