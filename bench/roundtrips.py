"""Database round trips per request, counted on the wire: the app runs with its DATABASE_URL
pointing at a TCP proxy in front of PostgreSQL, and a round trip is one client flight (bytes the
client sends after the server last answered: a pipelined Bind/Execute/Sync is one). Counting the
wire, not the code, makes the service and the yardstick comparable and needs nothing from the
server (no pg_stat_statements, no log)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import workload
from bench.load import BenchError, post

# The first requests on a pooled connection also prepare its statements: not counted.
WARM_REQUESTS = 3
SAMPLES = 3
# Work an app does after answering (returning a connection to its pool) lands in this window.
SETTLE_S = 0.05


class FlightProxy:
    """127.0.0.1:<port> → the server, counting client flights over all its connections."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.flights = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(database_url,), daemon=True)

    def __enter__(self) -> FlightProxy:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _main(self, database_url: str) -> None:
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        parts = urlsplit(database_url)
        credentials = parts.netloc.rpartition("@")[0]
        port = server.sockets[0].getsockname()[1]
        netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.upstream)
        answered = True

        async def pump(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_client: bool
        ) -> None:
            nonlocal answered
            while data := await reader.read(65536):
                if from_client and answered:
                    self.flights += 1
                answered = not from_client
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(ConnectionError):
            await asyncio.gather(pump(client_r, server_w, True), pump(server_r, client_w, False))


def count(start_app: Callable[[str], Any], database_url: str, key_prefix: str) -> dict[str, Any]:
    """Round trips of a new lead and of its replay. `start_app(url)` starts the app on that
    database URL and returns it (its `port`, `stop()`)."""
    with FlightProxy(database_url) as proxy:
        app = start_app(proxy.url)
        try:
            connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)

            def flights(key: str, expected: int) -> int:
                before = proxy.flights
                status, answer = post(connection, workload.body(key), "application/json")
                if status != expected:
                    raise BenchError(f"expected HTTP {expected}, got {status}: {answer[:300]!r}")
                time.sleep(SETTLE_S)
                return proxy.flights - before

            new, replay = [], []
            for i in range(WARM_REQUESTS + SAMPLES):
                key = f"{key_prefix}-{i}"
                new.append(flights(key, 201))
                replay.append(flights(key, 200))
            connection.close()
        finally:
            app.stop()
    new, replay = new[WARM_REQUESTS:], replay[WARM_REQUESTS:]
    return {"new_lead": max(new), "replay": max(replay), "samples": {"new": new, "replay": replay}}
