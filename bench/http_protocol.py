"""What `web.http_limits` costs: requests/s of one uvicorn worker with and without it.

    .venv/bin/python -m bench.http_protocol [--pairs 5] [--duration 5] [--connections 16]

Each run starts one worker serving the app (`GET /healthz`: no database, so the HTTP layer is
most of the work and any cost of the protocol adjustments shows the most), loads it with
`wrk` for `--duration` seconds, and stops it. Runs alternate, with and without, so that drift
of the machine affects both alike. Prints every run, the medians and their ratio.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

from bench.processes import ROOT
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


def one_run(mode: str, duration_s: int, connections: int) -> float:
    """Requests/s that `wrk` measured against one worker in `mode`."""
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
        output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    finally:
        worker.terminate()
        worker.wait(15)
    found = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{errors.group(1)} failed requests in a {mode} run")
    return float(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="runs of each mode (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench.http_protocol: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    for pair in range(args.pairs):
        # Alternate which mode goes first, too.
        for mode in MODES if pair % 2 == 0 else MODES[::-1]:
            rate = one_run(mode, args.duration, args.connections)
            results[mode].append(rate)
            print(f"pair {pair + 1}: {mode:>7} the limits: {rate:8.0f} requests/s", flush=True)
    medians = {mode: statistics.median(rates) for mode, rates in results.items()}
    for mode in MODES:
        rates = ", ".join(f"{r:.0f}" for r in results[mode])
        print(f"{mode:>7}: median {medians[mode]:.0f} requests/s ({rates})")
    print(f"ratio with/without: {medians['with'] / medians['without']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
