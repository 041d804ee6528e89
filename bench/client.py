"""HTTP load for the latency phases, run as its own process so it never shares the server's CPU
time slice or GIL: `python -m bench.client sequential|concurrent …` prints one JSON object.

Latency is the wall time of one request on a keep-alive connection: from writing the request to
having read the whole response body (`time.perf_counter_ns`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from typing import Any

from bench.workload import HEADERS, SOURCE_KEY, lead_body


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes, int]:
    """(status, body, wall time in ns) of one POST on an open keep-alive connection."""
    started = time.perf_counter_ns()
    connection.request("POST", path, body=body, headers=HEADERS)
    response = connection.getresponse()
    payload = response.read()
    return response.status, payload, time.perf_counter_ns() - started


def sequential(args: argparse.Namespace) -> dict[str, Any]:
    connection = http.client.HTTPConnection(args.host, args.port, timeout=30)
    statuses: dict[str, int] = {}
    latencies_ms: list[float] = []
    for i in range(args.warmup + args.count):
        key = f"{args.nonce}-seq-{i}"
        status, payload, elapsed = post(connection, args.path, lead_body(key, args.source_key))
        if i < args.warmup:
            if status != 201:
                raise SystemExit(f"warm-up request {i}: HTTP {status} {payload[:300]!r}")
            continue
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        latencies_ms.append(elapsed / 1e6)
    connection.close()
    return {"latencies_ms": latencies_ms, "statuses": statuses, "warmup": args.warmup}


def concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """`n` identical POSTs released at once, each on its own already-open connection."""
    body = lead_body(f"{args.nonce}-same", args.source_key)
    connections = []
    for _ in range(args.n):
        connection = http.client.HTTPConnection(args.host, args.port, timeout=30)
        connection.request("GET", "/healthz")  # opens the TCP connection before the race
        connection.getresponse().read()
        connections.append(connection)
    barrier = threading.Barrier(args.n)
    results: list[dict[str, Any]] = [{} for _ in range(args.n)]

    def worker(i: int) -> None:
        barrier.wait()
        try:
            status, payload, elapsed = post(connections[i], args.path, body)
            lead_id = json.loads(payload).get("lead_id") if payload[:1] == b"{" else None
            results[i] = {"status": status, "lead_id": lead_id, "ms": elapsed / 1e6}
        except Exception as error:  # reported, never hidden
            results[i] = {"status": None, "error": repr(error), "ms": None}

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    return {"results": results, "idempotency_key": f"{args.nonce}-same"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.client")
    parser.add_argument("mode", choices=("sequential", "concurrent"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/leads")
    parser.add_argument("--source-key", default=SOURCE_KEY)
    parser.add_argument("--nonce", required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args(argv)
    result = sequential(args) if args.mode == "sequential" else concurrent(args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
