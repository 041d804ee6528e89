"""Runs a lead file's rows as `IngestLead` commands, a bounded number in flight, retrying those
the database cannot take now until a deadline; a stream is read on a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, fields

from cli.import_files import BadRow, Row
from commands.ingest_lead import IngestLead, LeadIngested
from domain.errors import LeadError, UnmappedSource
from infrastructure.engine import as_unavailable

logger = logging.getLogger("leads.import")

# Rows read from a stream on the reading thread and not yet taken by the loop, at most.
ROWS_AHEAD = 2
NO_SOURCE_MESSAGE = (
    "The row names no source: give it a source_id or source_key column, "
    "or pass --source-id or --source-key."
)

Execute = Callable[[IngestLead], Awaitable[LeadIngested]]
ToCommand = Callable[[Mapping[str, object]], IngestLead]


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


RESULT_COLUMNS = tuple(field.name for field in fields(RowResult))


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


class ImportRun:
    """One run over the rows; `on_result` gets each row's result as it completes."""

    def __init__(
        self,
        execute: Execute,
        to_command: ToCommand,
        on_result: Callable[[RowResult], None],
        *,
        concurrency: int,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._execute = execute
        self._to_command = to_command
        self._on_result = on_result
        self._concurrency = concurrency
        self._retry = retry
        self._clock = clock
        self.tally = Tally()
        # Lines handed to a worker and not finished, in line order (dicts keep insertion order).
        self._pending: dict[int, None] = {}
        self._last_dispatched = 0
        self._outage_since: float | None = None
        self._gave_up: tuple[float, BaseException] | None = None
        self._stopped = asyncio.Event()
        self._read_error: BaseException | None = None
        self._queue: asyncio.Queue[Row | BadRow | None] = asyncio.Queue(concurrency)

    async def run(self, rows: Iterator[Row | BadRow], *, stream: bool = False) -> Tally:
        """Runs every row; raises DatabaseGone, or what reading the file raised. A file is read
        on the loop's thread (page-cache reads do not block), a `stream` (standard input, a
        pipe) on one of its own: it may block as long as its producer likes."""
        feeder = asyncio.create_task(self._feed(_read_on_thread(rows) if stream else _read(rows)))
        try:
            await asyncio.gather(*(self._work() for _ in range(self._concurrency)))
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
            for _ in range(self._concurrency):
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
        for _ in range(self._concurrency):
            await self._queue.put(None)

    async def _work(self) -> None:
        while (row := await self._queue.get()) is not None and not self._stopping:
            if (result := await self._result(row)) is None:
                return  # the run stops with this row not done
            del self._pending[row.line]
            self.tally.add(result)
            self._on_result(result)

    async def _result(self, row: Row | BadRow) -> RowResult | None:
        if isinstance(row, BadRow):
            return rejected(row.line, row.error)
        try:
            ingested = await self._execute_retrying(self._to_command(row.fields))
        except LeadError as error:
            return rejected(row.line, error)
        except Exception as error:
            logger.exception("line %d: unexpected error", row.line)
            return RowResult(
                row.line,
                "rejected",
                error_code="internal_error",
                error_message=f"Unexpected error ({type(error).__name__}); see the log.",
            )
        if ingested is None:
            return None
        lead = ingested.lead
        return RowResult(
            row.line,
            "replayed" if ingested.replayed else "created",
            lead_id=str(lead.lead_id),
            source_id=str(lead.source_id),
            idempotency_key=lead.idempotency_key,
        )

    async def _execute_retrying(self, command: IngestLead) -> LeadIngested | None:
        """The command's outcome; None when the run stops while the database is away."""
        delay = self._retry.first_delay_s
        while True:
            try:
                ingested = await self._execute(command)
            except Exception as error:
                if as_unavailable(error) is None:  # the row is wrong, not the database away
                    raise
                now = self._clock()
                if self._outage_since is None:
                    self._outage_since = now
                waited = now - self._outage_since
                remaining = self._retry.deadline_s - waited
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
                delay = min(delay * 2, self._retry.max_delay_s)
            else:
                self._outage_since = None
                return ingested


async def _read(rows: Iterator[Row | BadRow]) -> AsyncGenerator[Row | BadRow, None]:
    for row in rows:
        yield row


async def _read_on_thread(rows: Iterator[Row | BadRow]) -> AsyncGenerator[Row | BadRow, None]:
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
