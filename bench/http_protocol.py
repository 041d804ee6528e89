"""What `web.http_limits` costs: requests/s of one uvicorn worker with and without it.

    .venv/bin/python -m bench.http_protocol [--pairs 5] [--duration 5] [--connections 16]

Over HTTP: each run starts one worker serving the app (`GET /healthz`: no database, so the
HTTP layer is most of the work and any cost of the protocol adjustments shows the most), loads
it with `wrk` for `--duration` seconds, and stops it. Runs alternate, with and without, so
that drift of the machine affects both alike. Prints every run, the medians and their ratios:
requests/s, and the worker's CPU time per request (from /proc; steadier than requests/s on a
machine that other work shares).

In process: the protocol alone, fed a typical GET by hand and answered by a trivial ASGI app,
20,000 requests a run, timed in process CPU time: the cost of the adjustments themselves,
without the noise of sockets, wrk and the rest of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from bench.processes import ROOT
from bench.procfs import process_cpu
from infrastructure.local_postgres import free_port

# The app as the spec command serves it (importing it installs the limits), then optionally
# uvicorn's protocols restored, then served.
LAUNCHER = """
import sys
import uvicorn
from web import http_limits
from web.app import app
if sys.argv[1] == "without":
    http_limits.uninstall()
assert http_limits.is_installed() == (sys.argv[1] == "with")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_level="warning")
"""
MODES = ("with", "without")


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise SystemExit("the worker did not answer within 30 s")


def _cpu_s(pid: int) -> float:
    cpu = process_cpu(pid)
    if cpu is None:
        raise SystemExit("the worker exited during the run")
    return cpu[0] + cpu[1]


def one_run(mode: str, duration_s: int, connections: int) -> tuple[float, float]:
    """Requests/s that `wrk` measured against one worker in `mode`, and the worker's CPU
    microseconds per request."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    worker = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, mode, str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(url, worker)
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", url]
        cpu_before = _cpu_s(worker.pid)
        output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        cpu_s = _cpu_s(worker.pid) - cpu_before
    finally:
        worker.terminate()
        worker.wait(15)
    found = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{errors.group(1)} failed requests in a {mode} run")
    requests = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    if requests is None:
        raise SystemExit(f"no request count in wrk's output:\n{output}")
    return float(found.group(1)), cpu_s / int(requests.group(1)) * 1e6


class _Transport:
    """Just enough of an asyncio transport for the protocol: keeps nothing it is sent."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _answer_ok(scope: object, receive: object, send: Any) -> None:
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


_GET = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


async def _protocol_cpu_us(requests: int) -> float:
    """CPU microseconds per request of uvicorn's httptools protocol and a trivial app."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app=_answer_ok, http="httptools", lifespan="off", access_log=False)
    config.load()
    protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(_Transport())  # type: ignore[arg-type]
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(_GET)
        await asyncio.sleep(0)  # the request's task runs and answers
        await asyncio.sleep(0)
    return (time.process_time() - started) / requests * 1e6


def in_process(pairs: int) -> dict[str, list[float]]:
    from web import http_limits

    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for pair in range(pairs):
        for mode in MODES if pair % 2 == 0 else MODES[::-1]:
            if mode == "with":
                http_limits.install()
            else:
                http_limits.uninstall()
            cpu[mode].append(asyncio.run(_protocol_cpu_us(20_000)))
    http_limits.install()
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="runs of each mode (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--in-process-only", action="store_true", help="skip the runs over HTTP (no wrk needed)"
    )
    args = parser.parse_args(argv)
    protocol = in_process(max(args.pairs, 10))
    each = {mode: statistics.median(values) for mode, values in protocol.items()}
    for mode in MODES:
        print(f"in process, {mode:>7} the limits: {each[mode]:.2f} CPU µs/request")
    print(f"in process, CPU per request with/without: {each['with'] / each['without']:.3f}")
    if args.in_process_only:
        return 0
    if shutil.which("wrk") is None:
        print("bench.http_protocol: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for pair in range(args.pairs):
        # Alternate which mode goes first, too.
        for mode in MODES if pair % 2 == 0 else MODES[::-1]:
            rate, cpu_us = one_run(mode, args.duration, args.connections)
            rates[mode].append(rate)
            cpu[mode].append(cpu_us)
            print(
                f"pair {pair + 1}: {mode:>7} the limits: {rate:8.0f} requests/s, "
                f"{cpu_us:6.1f} CPU µs/request",
                flush=True,
            )
    median = {mode: statistics.median(values) for mode, values in rates.items()}
    cost = {mode: statistics.median(values) for mode, values in cpu.items()}
    for mode in MODES:
        print(f"{mode:>7}: median {median[mode]:.0f} requests/s, {cost[mode]:.1f} CPU µs/request")
    print(f"requests/s with/without: {median['with'] / median['without']:.3f}")
    print(f"CPU per request with/without: {cost['with'] / cost['without']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
