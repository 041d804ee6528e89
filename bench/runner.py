"""`bench/run`: the service against its ceilings (SPEC §9) and against a yardstick, on a fresh
database on this machine's PostgreSQL. Linux only: it reads /proc and stops the apps by process
group. Run from the repository root as `python -m bench.runner`; stdlib imports only up here, so
that the platform check comes first."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    workers: int = 1
    pairs: int = 1
    duration: float = 10.0
    requests: int = 100
    warmup: int = 100
    import_rows: int = 20_000
    accept: str = "application/json"
    json: Path | None = None


QUICK = {"duration": 2.0, "warmup": 20, "import_rows": 1_000}


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--workers", type=int, default=1, help="uvicorn --workers for both apps (default 1)")
    add("--pairs", type=int, default=1, help="alternating runs of both apps (default 1)")
    add("--duration", type=float, default=10, help="seconds of each wrk/pgbench run (10)")
    add("--requests", type=int, default=100, help="sequential measured POSTs (100)")
    add("--warmup", type=int, default=100, help="sequential warm-up POSTs (100)")
    add("--import-rows", type=int, default=20_000, help="rows of `leads import`, 0: none")
    accept = "the measured POSTs' Accept: application/json (default), application/xml, text/plain"
    add("--accept", default="application/json", metavar="MEDIA", help=accept)
    add("--quick", action="store_true", help="a smoke run: 2 s runs, 20 warm-ups, 1,000 rows")
    add("--json", type=Path, metavar="FILE", help="also write every number to FILE")
    args = parser.parse_args(argv)
    if min(args.workers, args.pairs, args.duration, args.requests) <= 0:
        parser.error("--workers, --pairs, --duration and --requests must be positive")
    values = {k: v for k, v in vars(args).items() if k != "quick"}
    return Options(**(values | QUICK if args.quick else values))


def main(argv: list[str] | None = None) -> int:
    if not sys.platform.startswith("linux"):
        print(
            "bench/run: runs on Linux only (it reads /proc and stops the apps by process "
            f"group); this is {sys.platform}",
            file=sys.stderr,
        )
        return 2
    options = parse_args(argv)
    from bench import report, session  # POSIX-only modules (resource, process groups)

    status, results = session.run(options)
    if status != 0:
        return status
    results["summary"] = report.summarize(results)
    print(report.render(results))
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
