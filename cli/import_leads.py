"""`leads import FILE`: create leads from a CSV or JSON Lines file, one `IngestLead` per row.

A row is a posted lead: it becomes the same command, through `IngestLead.from_posted`, that a
POST to /api/leads becomes, and the same handler writes it (one autocommit statement).
Exit status: 0 every row created or replayed; 1 some rows rejected; 2 unreadable file (also
one that changes or fails while it is read), bad options, or no usable database; 130 stopped
by Ctrl-C. A run that ends before the file does says up to which line every row is done.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import itertools
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any, BinaryIO

from tqdm import tqdm

from cli.import_files import FORMATS, BadRow, LeadFileError, Row, format_of, read_rows
from cli.import_run import (
    RESULT_COLUMNS,
    DatabaseGone,
    ImportRun,
    RetryPolicy,
    RowResult,
    Tally,
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


@dataclass(frozen=True, slots=True)
class RowCommands:
    """Turns a row's fields into its `IngestLead`, as HTTP turns a request's into one.

    The --source-id / --source-key options join every row the way query-string parameters
    join a body: a row naming another value for the same field is rejected, and one naming
    another source by the other selector is the domain's conflict to decide.
    """

    selectors: tuple[tuple[str, str], ...]
    received_path: str

    def __call__(self, fields: Mapping[str, object]) -> IngestLead:
        posted = merge_fields(dict(fields), self.selectors) if self.selectors else fields
        return IngestLead.from_posted(posted, (), None, self.received_path)


def selectors(source_id: str | None, source_key: str | None) -> tuple[tuple[str, str], ...]:
    """The options' source fields, checked here: a bad option is a usage error, not N rows."""
    pairs: list[tuple[str, str]] = []
    if source_id is not None:
        try:
            number = parse_source_id(source_id)
        except LeadError:
            number = None
        if number is None:
            raise UsageError("--source-id must be a source id: digits, 1 to 2^63-1")
        pairs.append(("source_id", str(number)))
    if source_key is not None:
        try:
            pairs.append(("source_key", canonical_source_key(source_key)))
        except LeadError:
            raise UsageError(
                "--source-key is not a source key: 1 to 128 of a-z 0-9 . _ ~ - "
                "(compared lower-cased), starting with a letter or digit"
            ) from None
    return tuple(pairs)


def received_path(file: str) -> str:
    """What imported leads store as `received_path`: /import/<the file's name>."""
    name = STDIN if file == STDIN else Path(file).name
    # A file name may hold bytes that are not UTF-8 (as lone surrogates); the column may not.
    return RECEIVED_PATH_PREFIX + name.encode("utf-8", "replace").decode("utf-8")


def display_name(file: str) -> str:
    return "<stdin>" if file == STDIN else file


def run(args: argparse.Namespace) -> int:
    name = display_name(args.file)
    try:
        file_format = format_of(args.file, args.format)
        commands = RowCommands(selectors(args.source_id, args.source_key), received_path(args.file))
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
            # The first row now: a file without a usable header fails before the database.
            reader = read_rows(stream, file_format, settings.max_body_bytes)
            stack.callback(reader.close)  # before the stream closes: a reader may hold it
            rows = _first_read(reader)
        except (LeadFileError, OSError) as error:
            return _fail(f"{name}: {_reading_problem(error)}")
        try:
            write_result = _results_writer(stack, args.results)
        except OSError as error:
            return _fail(f"{args.results}: cannot write it: {error.strerror or error}")
        size = _regular_file_size(stream)
        progress = stack.enter_context(_Progress(stream, size))

        def on_result(result: RowResult) -> None:
            write_result(result)
            progress.advance()

        try:
            return _run_on_fast_loop(
                _import(
                    rows,
                    commands,
                    settings,
                    args,
                    on_result,
                    name=name,
                    stream=size is None,
                )
            )
        except (LeadFileError, OSError) as error:
            return _fail(f"{name}: {_reading_problem(error)}")
    raise AssertionError("unreachable")


def _run_on_fast_loop(coroutine: Coroutine[Any, Any, int]) -> int:
    """Runs on uvloop when it is installed (uvicorn[standard] brings it, and the service runs
    on it): it spends less CPU per database round trip than asyncio's own loop."""
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


def _first_read(rows: Iterator[Row | BadRow]) -> Iterator[Row | BadRow]:
    first = next(rows, None)
    return iter(()) if first is None else itertools.chain((first,), rows)


def _results_writer(stack: contextlib.ExitStack, path: str | None) -> Callable[[RowResult], None]:
    """Writes each row's result to `path` (a CSV file with a header), as rows finish."""
    if path is None:
        return lambda result: None
    out = stack.enter_context(open(path, "w", newline="", encoding="utf-8"))  # noqa: SIM115
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    return lambda result: writer.writerow(dataclasses.astuple(result))


async def _import(
    rows: Iterator[Row | BadRow],
    commands: RowCommands,
    settings: Settings,
    args: argparse.Namespace,
    on_result: Callable[[RowResult], None],
    *,
    name: str,
    stream: bool,
) -> int:
    concurrency: int = args.concurrency
    # One pooled connection per row in flight: more would sit idle, fewer would queue.
    application = bootstrap(settings.model_copy(update={"db_pool_size": concurrency}))
    unread: BaseException | None = None
    try:
        problem = await database_problem(application, settings.database_url)
        if problem is not None:
            return _fail(problem)
        started = time.perf_counter()
        runner = ImportRun(
            application.bus.execute,
            commands,
            on_result,
            concurrency=concurrency,
            retry=RetryPolicy(args.deadline),
        )
        try:
            with _first_interrupt_stops(runner.stop):
                await runner.run(rows, stream=stream)
        except DatabaseGone as gone:
            return _fail(stopped_line(gone, settings.database_url))
        except (LeadFileError, OSError) as error:
            unread = error
        elapsed = time.perf_counter() - started
    finally:
        await application.close()
    # The rows done are counted even when the run ends before the file does.
    print(summary_line(runner.tally, elapsed))
    done = f"{done_clause(runner.done_through())}; re-running the import is safe"
    if unread is not None:
        return _fail(f"{name}: {_reading_problem(unread)}; {done}")
    if runner.stopped:
        print(f"leads: interrupted; {done}", file=sys.stderr)
        return INTERRUPTED
    return 1 if runner.tally.rejected else 0


@contextlib.contextmanager
def _first_interrupt_stops(stop: Callable[[], None]) -> Iterator[None]:
    """While the rows run, the first Ctrl-C (SIGINT) calls `stop` on the event loop: no row is
    taken after it, the rows in flight finish, and the summary counts them. A second Ctrl-C
    raises KeyboardInterrupt at once, as Python does by default."""
    previous = signal.getsignal(signal.SIGINT)
    # Signals reach the main thread only; SIG_IGN (a background job) and a handler not set
    # from Python (None, which cannot be put back) are left as they are.
    if (
        threading.current_thread() is not threading.main_thread()
        or previous is None
        or previous == signal.SIG_IGN
    ):
        yield
        return
    loop = asyncio.get_running_loop()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        loop.call_soon_threadsafe(stop)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def database_problem(application: Application, url: str) -> str | None:
    """Why the database cannot take leads now (one line), or None when it can."""
    try:
        readiness = await application.query(CheckReadiness())
    except Exception as error:
        return unavailable_because(error, url)
    if readiness.ready:
        return None
    if readiness.schema_revision is None:
        return DatabaseProblem(SCHEMA_NOT_MIGRATED).line(url)
    return (
        f"the database schema is at revision {readiness.schema_revision}, not the latest "
        f"({readiness.expected_revision}): run `leads db upgrade`"
    )


def unavailable_because(error: BaseException, url: str) -> str:
    diagnosed = diagnosed_line(error, url)
    if diagnosed is not None:
        return diagnosed
    cause = error.__cause__ if isinstance(error, ServiceUnavailable) else error
    detail = str(cause or error).strip().splitlines()
    return f"the database is unavailable: {detail[0] if detail else type(cause).__name__}"


def done_clause(done_through: int) -> str:
    return f"every row up to line {done_through} is done" if done_through else "no row is done"


def stopped_line(gone: DatabaseGone, url: str) -> str:
    return (
        f"stopped after {gone.waited_s:.0f} s without a usable database "
        f"({unavailable_because(gone.error, url)}); {done_clause(gone.done_through)}; "
        "re-running the import is safe"
    )


def summary_line(tally: Tally, elapsed_s: float) -> str:
    """The last line on stdout (bench/import_summary.py parses it)."""
    rate = tally.rows / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"imported {tally.rows} rows: {tally.created} created, {tally.replayed} replayed, "
        f"{tally.rejected} rejected in {elapsed_s:.2f} s ({rate:.1f} rows/s)"
    )


class _Progress:
    """A progress bar on stderr when it is a terminal: rows, rate and, for a file, an ETA
    from the share of its bytes read so far."""

    _ESTIMATE_EVERY = 500

    def __init__(self, stream: IO[bytes], size: int | None) -> None:
        self._stream = stream
        self._size = size
        self._done = 0
        self._bar: Any = None
        if sys.stderr.isatty():
            self._bar = tqdm(unit=" rows", file=sys.stderr, dynamic_ncols=True, mininterval=0.2)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def advance(self) -> None:
        if self._bar is None:
            return
        self._done += 1
        self._bar.update(1)
        if self._size and self._done % self._ESTIMATE_EVERY == 0:
            with contextlib.suppress(OSError, ValueError):
                read = self._stream.tell()
                if read:
                    self._bar.total = max(self._done, round(self._done * self._size / read))


def _regular_file_size(stream: IO[bytes]) -> int | None:
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None
