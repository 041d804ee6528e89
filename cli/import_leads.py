"""`leads import FILE`: create leads from a CSV or JSON Lines file, each row a posted lead run
through the same `IngestLead` command and handler as a POST to /api/leads."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import itertools
import logging
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

from tqdm import tqdm

from cli.import_files import FORMATS, BadRow, LeadFileError, Row, format_of, read_rows, regular_file
from cli.import_run import (
    RESULT_COLUMNS,
    DatabaseGone,
    ImportRun,
    RetryPolicy,
    RowResult,
    ToCommand,
)
from cli.shared import diagnosed_line
from commands.ingest_lead import IngestLead
from domain.classification import canonical_source_key, parse_source_id
from domain.errors import LeadError, ServiceUnavailable
from domain.posted import merge_fields
from infrastructure.container import Application, bootstrap
from infrastructure.database_problems import SCHEMA_NOT_MIGRATED, DatabaseProblem
from infrastructure.settings import Settings
from queries.readiness import CheckReadiness

STDIN = "-"
INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
DEFAULT_CONCURRENCY = 8
DEFAULT_DEADLINE_S = 60.0
# `received_path` of an imported lead: this prefix and the file's name. HTTP paths start
# with /api/leads, so the two never mix.
RECEIVED_PATH_PREFIX = "/import/"
# Rows between two estimates of the progress bar's total.
ESTIMATE_EVERY = 500


class UsageError(ValueError):
    """An option the import cannot use."""


def register(command: argparse.ArgumentParser) -> None:
    command.description = (
        "Create leads from a file: each row is a posted lead, under the same rules as a POST "
        "to /api/leads. Re-importing a file is safe: rows already imported are replays."
    )
    command.add_argument(
        "file",
        metavar="FILE",
        help=".csv (header row) or .jsonl (one JSON object a line); - reads standard input",
    )
    command.add_argument(
        "--format", choices=FORMATS, help="the file's format (default: from its extension)"
    )
    command.add_argument("--source-id", metavar="N", help="the source of every row")
    command.add_argument("--source-key", metavar="KEY", help="the source key of every row")
    command.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"rows in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    command.add_argument(
        "--deadline",
        type=_positive_seconds,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help="stop when the database has been unavailable this long "
        f"(default {DEFAULT_DEADLINE_S:g})",
    )
    command.add_argument(
        "--results",
        metavar="FILE",
        help="write one CSV line per row: " + ",".join(RESULT_COLUMNS),
    )
    command.set_defaults(run=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be 1 to 1000, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 86400, got {text}")
    return value


def _row_commands(file: str, source_id: str | None, source_key: str | None) -> ToCommand:
    """Turns a row's fields into its `IngestLead`, as HTTP turns a request's into one.

    The --source-id / --source-key options join every row the way query-string parameters
    join a body: a row naming another value for the same field is rejected, and one naming
    another source by the other selector is the domain's conflict to decide. A bad option is
    a usage error, not N rejected rows.
    """
    selectors: list[tuple[str, str]] = []
    if source_id is not None:
        try:
            number = parse_source_id(source_id)
        except LeadError:
            number = None
        if number is None:
            raise UsageError("--source-id must be a source id: digits, 1 to 2^63-1")
        selectors.append(("source_id", str(number)))
    if source_key is not None:
        try:
            selectors.append(("source_key", canonical_source_key(source_key)))
        except LeadError:
            raise UsageError(
                "--source-key is not a source key: 1 to 128 of a-z 0-9 . _ ~ - "
                "(compared lower-cased), starting with a letter or digit"
            ) from None
    # A file name may hold bytes that are not UTF-8 (as lone surrogates); the column may not.
    path = RECEIVED_PATH_PREFIX + Path(file).name.encode("utf-8", "replace").decode("utf-8")

    def to_command(fields: Mapping[str, object]) -> IngestLead:
        posted = merge_fields(dict(fields), selectors) if selectors else fields
        return IngestLead.from_posted(posted, (), None, path)

    return to_command


def run(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.file == STDIN else args.file
    try:
        file_format = format_of(args.file, args.format)
        to_command = _row_commands(args.file, args.source_id, args.source_key)
    except LeadFileError as error:
        return _fail(f"{name}: {error}")
    except UsageError as error:
        return _fail(str(error))
    settings = Settings.from_env()
    # The readiness check reads the schema revision through Alembic, which logs at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        try:
            stream = stack.enter_context(_open_input(args.file))
            reader = read_rows(stream, file_format, settings.max_body_bytes)
            stack.callback(reader.close)  # before the stream closes: a reader may hold it
            # The first row now: a file without a usable header fails before the database.
            first = next(reader, None)
        except (LeadFileError, OSError) as error:
            return _fail(f"{name}: {_reading_problem(error)}")
        try:
            results = None
            if args.results is not None:
                out = stack.enter_context(open(args.results, "w", newline="", encoding="utf-8"))
                results = csv.writer(out, lineterminator="\n")
                results.writerow(RESULT_COLUMNS)
        except OSError as error:
            return _fail(f"{args.results}: cannot write it: {error.strerror or error}")
        opened = regular_file(stream)
        size = None if opened is None else opened.st_size
        bar = None
        if sys.stderr.isatty():
            bar = tqdm(unit=" rows", file=sys.stderr, dynamic_ncols=True, mininterval=0.2)
            stack.enter_context(bar)

        def on_result(result: RowResult) -> None:
            if results is not None:
                results.writerow(dataclasses.astuple(result))
            if bar is None:
                return
            bar.update(1)
            # For a file, an ETA: its size from the share of its bytes read so far.
            if size and bar.n % ESTIMATE_EVERY == 0:
                with contextlib.suppress(OSError, ValueError):
                    read = stream.tell()
                    if read:
                        bar.total = max(bar.n, round(bar.n * size / read))

        rows = itertools.chain(() if first is None else (first,), reader)
        try:
            return _run_on_fast_loop(
                _import(rows, to_command, settings, args, on_result, name=name, stream=size is None)
            )
        except (LeadFileError, OSError) as error:
            return _fail(f"{name}: {_reading_problem(error)}")
    raise AssertionError("unreachable")


def _run_on_fast_loop(coroutine: Coroutine[Any, Any, int]) -> int:
    # uvloop (uvicorn[standard] brings it, and the service runs on it) spends less CPU per
    # database round trip than asyncio's own loop.
    try:
        import uvloop
    except ImportError:  # pragma: no cover - e.g. on Windows
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def _fail(message: str) -> int:
    print(f"leads: {message}", file=sys.stderr)
    return 2


def _reading_problem(error: BaseException) -> str:
    if isinstance(error, OSError):
        return f"cannot read it: {error.strerror or error}"
    return str(error)


def _open_input(file: str) -> contextlib.AbstractContextManager[BinaryIO]:
    if file == STDIN:
        return contextlib.nullcontext(sys.stdin.buffer)  # not ours to close
    return open(file, "rb")


async def _import(
    rows: Iterator[Row | BadRow],
    to_command: ToCommand,
    settings: Settings,
    args: argparse.Namespace,
    on_result: Callable[[RowResult], None],
    *,
    name: str,
    stream: bool,
) -> int:
    # One pooled connection per row in flight: more would sit idle, fewer would queue.
    application = bootstrap(settings.model_copy(update={"db_pool_size": args.concurrency}))
    unread: BaseException | None = None
    try:
        problem = await _database_problem(application, settings.database_url)
        if problem is not None:
            return _fail(problem)
        started = time.perf_counter()
        runner = ImportRun(
            application.bus.execute,
            to_command,
            on_result,
            concurrency=args.concurrency,
            retry=RetryPolicy(args.deadline),
        )
        run = asyncio.ensure_future(runner.run(rows, stream=stream))
        try:
            try:
                await asyncio.shield(run)
            except asyncio.CancelledError:
                # Ctrl-C: asyncio.Runner cancels the main task on the first (on the main
                # thread, unless SIGINT is ignored) and raises KeyboardInterrupt on the second.
                # No row is taken after the first; the rows in flight finish.
                cast(asyncio.Task[int], asyncio.current_task()).uncancel()
                runner.stop()
                await run
        except DatabaseGone as gone:
            return _fail(
                f"stopped after {gone.waited_s:.0f} s without a usable database "
                f"({_unavailable_because(gone.error, settings.database_url)}); "
                + _done(gone.done_through)
            )
        except (LeadFileError, OSError) as error:
            unread = error
        elapsed = time.perf_counter() - started
    finally:
        await application.close()
    # The rows done are counted even when the run ends before the file does. This is the
    # last line on stdout, and bench/import_summary.py parses it.
    tally = runner.tally
    rate = tally.rows / elapsed if elapsed > 0 else 0.0
    print(
        f"imported {tally.rows} rows: {tally.created} created, {tally.replayed} replayed, "
        f"{tally.rejected} rejected in {elapsed:.2f} s ({rate:.1f} rows/s)"
    )
    done = _done(runner.done_through())
    if unread is not None:
        return _fail(f"{name}: {_reading_problem(unread)}; {done}")
    if runner.stopped:
        print(f"leads: interrupted; {done}", file=sys.stderr)
        return INTERRUPTED
    return 1 if tally.rejected else 0


def _done(done_through: int) -> str:
    done = f"every row up to line {done_through} is done" if done_through else "no row is done"
    return f"{done}; re-running the import is safe"


async def _database_problem(application: Application, url: str) -> str | None:
    """Why the database cannot take leads now (one line), or None when it can."""
    try:
        readiness = await application.query(CheckReadiness())
    except Exception as error:
        return _unavailable_because(error, url)
    if readiness.ready:
        return None
    if readiness.schema_revision is None:
        return DatabaseProblem(SCHEMA_NOT_MIGRATED).line(url)
    return (
        f"the database schema is at revision {readiness.schema_revision}, not the latest "
        f"({readiness.expected_revision}): run `leads db upgrade`"
    )


def _unavailable_because(error: BaseException, url: str) -> str:
    diagnosed = diagnosed_line(error, url)
    if diagnosed is not None:
        return diagnosed
    cause = error.__cause__ if isinstance(error, ServiceUnavailable) else error
    detail = str(cause or error).strip().splitlines()
    return f"the database is unavailable: {detail[0] if detail else type(cause).__name__}"
