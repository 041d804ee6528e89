"""`bench/run`: the project's benchmark (SPEC §9), run from the repository root with the venv's
python as `python -m bench.runner`. Linux only: it reads /proc, drives wrk and pgbench, and
stops the service by process group.

Phases, against a fresh database created (and dropped) on a real PostgreSQL:

1. round trips: statements and database round trips per new lead and per replay;
2. the service, started with the spec command, `--workers N`;
3. sequential: new-lead POSTs after a warm-up, one keep-alive connection;
4. concurrent: 20 identical POSTs released at once; exactly one 201, one lead_id, one row;
5. sustained: `wrk` with 16 connections for `--duration` s, a unique key per request;
6. ceilings: `pgbench` running one new lead with 16 clients, same duration, twice: the
   service's own one statement and the former four-statement transaction (BEGIN; SELECT
   source; INSERT; COMMIT);
7. import: `leads import` of a CSV of new leads;
8. soak (`--soak S`): a sustained run of S seconds and the RSS drift over it;
9. profile (`--profile DIR`): one more sustained run under py-spy, summarized.

Modules: session (the phases in order, cleanup), context (what phases share), database, service,
machine, meters + procfs (CPU and memory), processes, tools, workload (what is posted),
new_lead_sql (the ceilings' SQL), phases/*, targets (the targets table), report (the table).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from bench.options import Options
from bench.workload import IMPORT_ROWS


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--workers", type=int, default=1, help="uvicorn workers (default 1)")
    add("--duration", type=float, default=10, help="sustained and pgbench seconds (default 10)")
    add("--soak", type=float, default=0, help="also a soak run of S seconds")
    add("--count", type=int, default=100, help="sequential measured requests (default 100)")
    add("--warmup", type=int, default=200, help="sequential warm-up requests (default 200)")
    add(
        "--import-rows",
        type=int,
        default=IMPORT_ROWS,
        help=f"rows of the import (default {IMPORT_ROWS})",
    )
    add("--leads", default="", help="how to run `leads` (default: this python -m cli)")
    add("--json", type=Path, help="write all results as JSON to this file")
    add("--check", action="store_true", help="exit 2 when a target is missed")
    add("--no-access-log", action="store_true", help="pass to uvicorn")
    add("--profile", type=Path, metavar="DIR", help="py-spy profile into DIR")
    add("--profile-native", action="store_true", help="py-spy --native")
    add("--py-spy", help="path of py-spy (else found or installed)")
    args = parser.parse_args(argv)
    if min(args.workers, args.duration, args.count, args.import_rows) <= 0:
        parser.error("--workers, --duration, --count and --import-rows must be positive")
    return Options(
        workers=args.workers,
        duration=args.duration,
        soak=args.soak,
        count=args.count,
        warmup=args.warmup,
        import_rows=args.import_rows,
        leads=tuple(shlex.split(args.leads)),
        json=args.json,
        check=args.check,
        access_log=not args.no_access_log,
        profile=args.profile,
        profile_native=args.profile_native,
        py_spy=args.py_spy,
    )


def main(argv: list[str] | None = None) -> int:
    if not sys.platform.startswith("linux"):
        print(
            f"bench/run: runs on Linux only (it reads /proc, drives wrk and pgbench, and stops "
            f"the service by process group); this is {sys.platform}",
            file=sys.stderr,
        )
        return 2
    options = parse_args(argv)
    # Imported here, after the platform check: they use POSIX-only modules (resource, signals).
    from bench import report, session, targets
    from bench.console import log

    status, results = session.run(options)
    if status != 0:
        return status
    verdicts = targets.evaluate(results)
    results["targets"] = [
        {
            "name": v.target.name,
            "key": v.key,
            "comparison": v.target.comparison,
            "value": v.target.value,
            "source": v.target.source,
            "measured": v.measured,
            "status": v.status,
        }
        for v in verdicts
    ]
    print(report.render(results))
    print()
    print("\n".join(report.final_lines(results)))
    if options.json:
        options.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"results written to {options.json}")
    missed = [v for v in verdicts if v.status == "missed"]
    for each in missed:
        log(f"target missed: {each.line()}")
    if options.check and missed:
        log(f"{len(missed)} target(s) missed (--check)")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
