"""`leads import FILE`: create leads from a CSV or JSON Lines file, each row a posted lead run
as the same `IngestLead` command as a POST to /api/leads, a bounded number in flight."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import itertools
import json
import logging
import sys
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import KW_ONLY, astuple, dataclass, field, fields
from pathlib import Path
from typing import BinaryIO, cast

from tqdm import tqdm

from cli.import_files import FORMATS, BadRow, LeadFileError, Row, format_of, read_rows, regular_file
from commands.ingest_lead import IngestLead, LeadIngested
from domain.classification import canonical_source_key, parse_source_id
from domain.errors import LeadError, ServiceUnavailable, UnmappedSource
from domain.posted import merge_fields
from infrastructure.container import Application, bootstrap
from infrastructure.database_problems import (
    SCHEMA_NOT_MIGRATED,
    DatabaseProblem,
    as_unavailable,
    diagnosed_line,
)
from infrastructure.settings import Settings
from queries.readiness import CheckReadiness

# Rows read from a stream on the reading thread and not yet taken by the loop, at most.
ROWS_AHEAD = 2
NO_SOURCE_MESSAGE = (
    "The row names no source: give it a source_id or source_key column, "
    "or pass --source-id or --source-key."
)

ToCommand = Callable[[Mapping[str, object]], IngestLead]
Rows = Iterator[Row | BadRow]

STDIN = "-"


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
        default=8,
        metavar="N",
        help="rows in flight at once (default %(default)s)",
    )
    command.add_argument(
        "--deadline",
        type=_positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="stop when the database has been unavailable this long (default %(default)g)",
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
    """A row's fields to its `IngestLead`, as HTTP turns a request's. The source options join
    each row as query-string parameters join a body; a bad one is a usage error, not N rows."""
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
    # /import/ and the file's name (HTTP paths start with /api/leads: the two never mix). A
    # file name may hold bytes that are not UTF-8 (as lone surrogates); the column may not.
    path = "/import/" + Path(file).name.encode("utf-8", "replace").decode("utf-8")

    def to_command(row: Mapping[str, object]) -> IngestLead:
        posted = merge_fields(dict(row), selectors) if selectors else row
        return IngestLead.from_posted(posted, (), None, path)

    return to_command


def run(args: argparse.Namespace) -> int:
    name = "<stdin>" if args.file == STDIN else args.file
    settings = Settings.from_env()
    with contextlib.ExitStack() as stack:
        try:
            file_format = format_of(args.file, args.format)
            to_command = _row_commands(args.file, args.source_id, args.source_key)
            stream = stack.enter_context(_open_input(args.file))
            reader = read_rows(stream, file_format, settings.max_body_bytes)
            stack.callback(_close, reader)  # before the stream closes: a reader may hold it
            # The first row now: a file without a usable header fails before the database.
            first = next(reader, None)
        except UsageError as error:
            return _fail(str(error))
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
        bar = stack.enter_context(  # on stderr, when it is a terminal
            tqdm(unit=" rows", dynamic_ncols=True, mininterval=0.2, disable=not sys.stderr.isatty())
        )

        def on_result(result: RowResult) -> None:
            if results is not None:
                results.writerow(astuple(result))
            bar.update(1)
            # For a file, an ETA now and then: its rows from the share of its bytes read so far.
            if size and not bar.disable and bar.n % 500 == 0:
                with contextlib.suppress(OSError, ValueError):
                    read = stream.tell()
                    if read:
                        bar.total = max(bar.n, round(bar.n * size / read))

        rows = itertools.chain(() if first is None else (first,), reader)
        try:
            # One pooled connection per row in flight: more would sit idle, fewer would queue.
            application = bootstrap(settings.model_copy(update={"db_pool_size": args.concurrency}))
            runner = ImportRun(
                application.bus.execute,
                to_command,
                on_result,
                concurrency=args.concurrency,
                retry=RetryPolicy(args.deadline),
            )
            # uvloop (uvicorn[standard] brings it, and the service runs on it) spends less CPU
            # per database round trip than asyncio's own loop.
            try:
                import uvloop
            except ImportError:  # pragma: no cover - e.g. on Windows
                factory = None
            else:
                factory = uvloop.new_event_loop
            with asyncio.Runner(loop_factory=factory) as loop:
                url = settings.database_url
                return loop.run(_import(application, runner, rows, url, name, size is None))
        except (LeadFileError, OSError) as error:
            return _fail(f"{name}: {_reading_problem(error)}")
    raise AssertionError("unreachable")


def _fail(message: str) -> int:
    print(f"leads: {message}", file=sys.stderr)
    return 2


def _reading_problem(error: BaseException) -> str:
    if isinstance(error, OSError):
        return f"cannot read it: {error.strerror or error}"
    return str(error)


def _open_input(file: str) -> contextlib.AbstractContextManager[BinaryIO]:
    if file == STDIN:
        # A reader of its own on the descriptor, never closed: a read still blocked on it at
        # exit (Ctrl-C while standard input is open) holds its lock, not that of sys.stdin,
        # which the interpreter takes on its way out.
        return contextlib.nullcontext(open(sys.stdin.fileno(), "rb", closefd=False))
    return open(file, "rb")


def _close(reader: Generator[Row | BadRow, None, None]) -> None:
    # Still running on the reading thread when a read there is blocked on standard input.
    with contextlib.suppress(ValueError):
        reader.close()


async def _import(
    application: Application, runner: ImportRun, rows: Rows, url: str, name: str, stream: bool
) -> int:
    unread: BaseException | None = None
    try:
        try:
            readiness = await application.query(CheckReadiness())
        except Exception as error:
            return _fail(_unavailable_because(error, url))
        if not readiness.ready:
            return _fail(
                DatabaseProblem(SCHEMA_NOT_MIGRATED).line(url)
                if readiness.schema_revision is None
                else f"the database schema is at revision {readiness.schema_revision}, not the "
                f"latest ({readiness.expected_revision}): run `leads db upgrade`"
            )
        started = time.perf_counter()
        run = asyncio.ensure_future(runner.run(rows, stream=stream))
        try:
            try:
                await asyncio.shield(run)
            except asyncio.CancelledError:
                # Ctrl-C: asyncio.Runner (on the main thread, when SIGINT has Python's default
                # handler) cancels the main task on the first and raises KeyboardInterrupt on
                # the second. No row is taken after the first; the rows in flight finish.
                cast(asyncio.Task[int], asyncio.current_task()).uncancel()
                runner.stop()
                await run
        except DatabaseGone as gone:
            return _fail(
                f"stopped after {gone.waited_s:.0f} s without a usable database "
                f"({_unavailable_because(gone.error, url)}); " + _done(gone.done_through)
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
        return 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
    return 1 if tally.rejected else 0


def _done(done_through: int) -> str:
    done = f"every row up to line {done_through} is done" if done_through else "no row is done"
    return f"{done}; re-running the import is safe"


def _unavailable_because(error: BaseException, url: str) -> str:
    cause = error.__cause__ if isinstance(error, ServiceUnavailable) else error
    detail = str(cause or error).strip().splitlines()
    return diagnosed_line(error, url) or (
        f"the database is unavailable: {detail[0] if detail else type(cause).__name__}"
    )


@dataclass(frozen=True, slots=True)
class RowResult:
    """One line of the results file."""

    line: int
    outcome: str  # created | replayed | rejected, as the `Tally` counters are named
    lead_id: str = ""
    source_id: str = ""
    idempotency_key: str = ""
    error_code: str = ""
    error_message: str = ""


RESULT_COLUMNS = tuple(column.name for column in fields(RowResult))


def rejected(line: int, error: LeadError) -> RowResult:
    """The row's error: its message and details, on one line (details never hold a source key)."""
    details = ", ".join(
        f"{name}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"
        for name, value in error.details.items()
    )
    message = f"{error.message} ({details})" if details else error.message
    if isinstance(error, UnmappedSource):
        # An imported row has no Host or path to map: it names a source or it has none.
        message = NO_SOURCE_MESSAGE
    return RowResult(line, "rejected", error_code=error.code, error_message=message)


@dataclass
class Tally:
    rows: int = 0
    created: int = 0
    replayed: int = 0
    rejected: int = 0

    def add(self, result: RowResult) -> None:
        self.rows += 1
        setattr(self, result.outcome, getattr(self, result.outcome) + 1)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for rows the database cannot take now, and how long an outage may last."""

    deadline_s: float
    first_delay_s: float = 0.05
    max_delay_s: float = 2.0


@dataclass(eq=False)  # an exception compares and hashes by identity
class DatabaseGone(Exception):
    """The database stayed unavailable past the deadline; rows up to `done_through` are done."""

    done_through: int
    waited_s: float
    error: BaseException


@dataclass(eq=False)
class ImportRun:
    """One run over the rows; `on_result` gets each row's result as it completes."""

    execute: Callable[[IngestLead], Awaitable[LeadIngested]]
    to_command: ToCommand
    on_result: Callable[[RowResult], None]
    _: KW_ONLY
    concurrency: int
    retry: RetryPolicy
    clock: Callable[[], float] = time.monotonic
    tally: Tally = field(default_factory=Tally, init=False)
    # Lines handed to a worker and not finished, in line order (dicts keep insertion order).
    _pending: dict[int, None] = field(default_factory=dict, init=False)
    _last_dispatched: int = field(default=0, init=False)
    _outage_since: float | None = field(default=None, init=False)
    _gave_up: tuple[float, BaseException] | None = field(default=None, init=False)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _read_error: BaseException | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[Row | BadRow | None] = asyncio.Queue(self.concurrency)

    async def run(self, rows: Rows, *, stream: bool = False) -> Tally:
        """Runs every row; raises DatabaseGone, or what reading the file raised. A `stream` (not
        a regular file) is read on a thread of its own: it may block as long as it likes."""
        feeder = asyncio.create_task(self._feed(_read_on_thread(rows) if stream else _read(rows)))
        try:
            await asyncio.gather(*(self._work() for _ in range(self.concurrency)))
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        if self._gave_up is not None:
            raise DatabaseGone(self.done_through(), *self._gave_up)
        if self._read_error is not None:
            raise self._read_error
        return self.tally

    def done_through(self) -> int:
        """The last line up to which every row is finished."""
        return next(iter(self._pending)) - 1 if self._pending else self._last_dispatched

    def stop(self) -> None:
        """No row is taken from now on; a row in flight finishes, unless it waits for the
        database to come back (then it is not done)."""
        self._stopped.set()
        self._wake_idle_workers()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    @property
    def _stopping(self) -> bool:
        return self._gave_up is not None or self.stopped

    def _wake_idle_workers(self) -> None:
        # A worker waiting for a row that a stream may never send stops on any item; the
        # queue is empty whenever one waits, so these reach every waiting worker.
        with contextlib.suppress(asyncio.QueueFull):
            for _ in range(self.concurrency):
                self._queue.put_nowait(None)

    async def _feed(self, rows: AsyncGenerator[Row | BadRow, None]) -> None:
        async with contextlib.aclosing(rows):
            try:
                async for row in rows:
                    if self._stopping:
                        break
                    self._pending[row.line] = None
                    self._last_dispatched = row.line
                    await self._queue.put(row)
            except Exception as error:  # the file could not be read further
                self._read_error = error
        for _ in range(self.concurrency):
            await self._queue.put(None)

    async def _work(self) -> None:
        while (row := await self._queue.get()) is not None and not self._stopping:
            if (result := await self._result(row)) is None:
                return  # the run stops with this row not done
            del self._pending[row.line]
            self.tally.add(result)
            self.on_result(result)

    async def _result(self, row: Row | BadRow) -> RowResult | None:
        if isinstance(row, BadRow):
            return rejected(row.line, row.error)
        try:
            ingested = await self._execute_retrying(self.to_command(row.fields))
        except LeadError as error:
            return rejected(row.line, error)
        except Exception as error:
            logging.getLogger("leads.import").exception("line %d: unexpected error", row.line)
            message = f"Unexpected error ({type(error).__name__}); see the log."
            return RowResult(
                row.line, "rejected", error_code="internal_error", error_message=message
            )
        if ingested is None:
            return None
        lead = ingested.lead
        outcome = "replayed" if ingested.replayed else "created"
        return RowResult(
            row.line, outcome, str(lead.lead_id), str(lead.source_id), lead.idempotency_key
        )

    async def _execute_retrying(self, command: IngestLead) -> LeadIngested | None:
        """The command's outcome; None when the run stops while the database is away."""
        delay = self.retry.first_delay_s
        while True:
            try:
                ingested = await self.execute(command)
                self._outage_since = None
                return ingested
            except Exception as error:
                if as_unavailable(error) is None:  # the row is wrong, not the database away
                    raise
                now = self.clock()
                if self._outage_since is None:
                    self._outage_since = now
                waited = now - self._outage_since
                remaining = self.retry.deadline_s - waited
                if self._stopping:
                    return None
                if remaining <= 0:
                    self._gave_up = (waited, error)
                    self._wake_idle_workers()
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), min(delay, remaining))
                if self.stopped:
                    return None
                delay = min(delay * 2, self.retry.max_delay_s)


async def _read(rows: Rows) -> AsyncGenerator[Row | BadRow, None]:
    for row in rows:
        yield row


async def _read_on_thread(rows: Rows) -> AsyncGenerator[Row | BadRow, None]:
    """`rows` read on a thread of their own, each handed over as soon as it is read; the
    thread waits while ROWS_AHEAD are not taken (it must not spend the GIL reading ahead)."""
    loop = asyncio.get_running_loop()
    handed: asyncio.Queue[Row | BadRow | Exception | None] = asyncio.Queue()
    room = threading.BoundedSemaphore(ROWS_AHEAD)
    stop = threading.Event()

    def hand_over(item: Row | BadRow | Exception | None) -> bool:
        while not room.acquire(timeout=0.2):
            if stop.is_set():
                return False
        try:
            loop.call_soon_threadsafe(handed.put_nowait, item)
        except RuntimeError:  # the loop is closed: the run is over
            return False
        return True

    def read() -> None:  # every row, then None (the end) or the error that ended reading
        try:
            for row in rows:
                if not hand_over(row):
                    return
        except Exception as error:
            hand_over(error)
        else:
            hand_over(None)

    # A daemon: a read blocked on standard input must not keep the process alive.
    threading.Thread(target=read, name="leads-import-reader", daemon=True).start()
    try:
        while (row := await handed.get()) is not None:
            room.release()
            if isinstance(row, Exception):
                raise row
            yield row
    finally:
        stop.set()
