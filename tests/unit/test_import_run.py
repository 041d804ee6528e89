"""The import runner with a fake bus: concurrency, bounded read-ahead, retries, the deadline."""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections.abc import Iterator, Mapping

import pytest

from cli.import_files import BadRow, Row
from cli.import_leads import (
    NO_SOURCE_MESSAGE,
    ROWS_AHEAD,
    DatabaseGone,
    ImportRun,
    RetryPolicy,
    RowResult,
    Tally,
)
from commands.ingest_lead import IngestLead, LeadIngested
from domain.errors import InvalidRequest, InvalidSource, ServiceUnavailable, UnmappedSource
from queries.leads import LeadView

QUICK = RetryPolicy(deadline_s=60, first_delay_s=0.001, max_delay_s=0.002)


def to_command(fields: Mapping[str, object]) -> IngestLead:
    return IngestLead.from_posted(fields, (), None, "/import/test.csv")


def lead_for(command: IngestLead, replayed: bool = False) -> LeadIngested:
    key = command.client_idempotency_key or "d1:x"
    view = LeadView(uuid.uuid5(uuid.NAMESPACE_OID, key), 7, 3, 1, 2, key, "client", "received")
    return LeadIngested(view, replayed)


def good_rows(lines: range) -> Iterator[Row | BadRow]:
    for line in lines:
        yield Row(line, {"source_id": "7", "idempotency_key": f"k{line}"})


class Recorder:
    def __init__(self) -> None:
        self.results: list[RowResult] = []

    def __call__(self, result: RowResult) -> None:
        self.results.append(result)

    def by_line(self) -> dict[int, RowResult]:
        return {result.line: result for result in self.results}


def runner(execute, recorder: Recorder, concurrency: int = 4, retry: RetryPolicy = QUICK, **kw):  # type: ignore[no-untyped-def]
    return ImportRun(execute, to_command, recorder, concurrency=concurrency, retry=retry, **kw)


async def test_every_row_gets_one_result_and_the_tally_counts_them() -> None:
    async def execute(command: IngestLead) -> LeadIngested:
        return lead_for(command, replayed=command.client_idempotency_key == "k3")

    recorder = Recorder()
    rows = [*good_rows(range(2, 5)), BadRow(5, InvalidRequest("Bad row.", reason="ragged_row"))]
    tally = await runner(execute, recorder).run(iter(rows))
    assert tally == Tally(rows=4, created=2, replayed=1, rejected=1)
    results = recorder.by_line()
    assert sorted(results) == [2, 3, 4, 5]
    assert results[3].outcome == "replayed"
    assert results[2] == RowResult(
        2,
        "created",
        lead_id=str(uuid.uuid5(uuid.NAMESPACE_OID, "k2")),
        source_id="7",
        idempotency_key="k2",
    )
    assert results[5] == RowResult(
        5, "rejected", error_code="invalid_request", error_message="Bad row. (reason=ragged_row)"
    )


async def test_domain_errors_reject_their_row_with_code_message_and_details() -> None:
    async def execute(command: IngestLead) -> LeadIngested:
        if command.source_id == 8:
            raise InvalidSource(reason="not_found")
        if command.source_id is None:
            raise UnmappedSource(reason="invalid_host")
        return lead_for(command)

    recorder = Recorder()
    rows = [
        Row(2, {"source_id": "8", "email": "a@x.com"}),
        Row(3, {"email": "b@x.com"}),
        Row(4, {"source_id": "x"}),  # refused while building the command
        Row(5, {"source_id": "7", "idempotency_key": "ok"}),
    ]
    tally = await runner(execute, recorder).run(iter(rows))
    assert tally == Tally(rows=4, created=1, replayed=0, rejected=3)
    results = recorder.by_line()
    assert (results[2].error_code, results[2].error_message) == (
        "invalid_source",
        "source_id does not name an active source. (reason=not_found)",
    )
    assert (results[3].error_code, results[3].error_message) == (
        "unmapped_source",
        NO_SOURCE_MESSAGE,
    )
    assert (results[4].error_code, results[4].error_message) == (
        "invalid_source",
        "source_id does not name an active source. (reason=malformed)",
    )


async def test_an_unexpected_error_rejects_its_row_as_internal_error() -> None:
    async def execute(command: IngestLead) -> LeadIngested:
        raise KeyError("bug")

    recorder = Recorder()
    tally = await runner(execute, recorder).run(good_rows(range(2, 3)))
    assert tally.rejected == 1
    assert recorder.results == [
        RowResult(
            2,
            "rejected",
            error_code="internal_error",
            error_message="Unexpected error (KeyError); see the log.",
        )
    ]


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_at_most_concurrency_rows_are_in_flight(concurrency: int) -> None:
    in_flight = 0
    most = 0

    async def execute(command: IngestLead) -> LeadIngested:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return lead_for(command)

    tally = await runner(execute, Recorder(), concurrency=concurrency).run(good_rows(range(2, 202)))
    assert tally.created == 200
    assert most == concurrency


@pytest.mark.parametrize("stream", [False, True])
async def test_reading_stays_a_bounded_distance_ahead_of_the_commands(stream: bool) -> None:
    read = 0
    finished = 0
    most_ahead = 0

    def rows() -> Iterator[Row | BadRow]:
        nonlocal read, most_ahead
        for line in range(2, 20_002):
            read += 1
            most_ahead = max(most_ahead, read - finished)
            yield Row(line, {"source_id": "7", "idempotency_key": f"k{line}"})

    def on_result(result: RowResult) -> None:
        nonlocal finished
        finished += 1

    async def execute(command: IngestLead) -> LeadIngested:
        await asyncio.sleep(0)  # slower than reading: an unbounded queue would fill up
        return lead_for(command)

    run = ImportRun(execute, to_command, on_result, concurrency=8, retry=QUICK)
    tally = await run.run(rows(), stream=stream)
    assert tally.created == finished == 20_000
    # In flight, queued for the workers, handed over by the reading thread, being handed on.
    assert most_ahead <= 8 + 8 + ROWS_AHEAD + 2


async def test_rows_of_a_slow_stream_run_as_they_arrive() -> None:
    seen = threading.Event()

    def rows() -> Iterator[Row | BadRow]:
        yield from good_rows(range(2, 6))
        # A producer with nothing more to say for now: the rows so far must not wait for it.
        if not seen.wait(10):
            raise AssertionError("rows 2-5 were not run while the stream had nothing more")
        yield from good_rows(range(6, 8))

    recorder = Recorder()

    def on_result(result: RowResult) -> None:
        recorder(result)
        if len(recorder.results) == 4:
            seen.set()

    async def execute(command: IngestLead) -> LeadIngested:
        return lead_for(command)

    run = ImportRun(execute, to_command, on_result, concurrency=2, retry=QUICK)
    tally = await run.run(rows(), stream=True)
    assert tally.created == 6


async def test_an_outage_stops_the_run_even_while_the_stream_waits_for_its_producer() -> None:
    release = threading.Event()

    def rows() -> Iterator[Row | BadRow]:
        yield from good_rows(range(2, 5))
        release.wait(60)  # standard input with nothing more to say, never closed

    async def execute(command: IngestLead) -> LeadIngested:
        raise ServiceUnavailable()

    ticks = itertools.count()
    run = runner(
        execute,
        Recorder(),
        retry=RetryPolicy(deadline_s=3, first_delay_s=0.001, max_delay_s=0.001),
        clock=lambda: float(next(ticks)),
    )
    try:
        with pytest.raises(DatabaseGone) as raised:
            # Not waiting for the stream: a hang would end here, not after 60 s.
            await asyncio.wait_for(run.run(rows(), stream=True), 30)
    finally:
        release.set()
    assert raised.value.done_through == 1


async def test_unavailable_rows_are_retried_until_they_succeed() -> None:
    attempts: dict[str | None, int] = {}

    async def execute(command: IngestLead) -> LeadIngested:
        key = command.client_idempotency_key
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] <= 3:
            raise ServiceUnavailable()
        return lead_for(command)

    tally = await runner(execute, Recorder()).run(good_rows(range(2, 12)))
    assert tally == Tally(rows=10, created=10)
    assert set(attempts.values()) == {4}


class MisconfiguredDatabase(Exception):
    """What the driver raises for a refused password (SQLSTATE 28P01)."""

    sqlstate = "28P01"


@pytest.mark.parametrize("outage", [ServiceUnavailable, MisconfiguredDatabase])
@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("stream", [False, True])
async def test_an_outage_past_the_deadline_stops_with_the_last_line_done(
    outage: type[Exception], concurrency: int, stream: bool
) -> None:
    ticks = itertools.count()

    async def execute(command: IngestLead) -> LeadIngested:
        key = command.client_idempotency_key or ""
        if int(key[1:]) >= 40:
            raise outage()
        return lead_for(command)

    recorder = Recorder()
    run = runner(
        execute,
        recorder,
        concurrency=concurrency,
        retry=RetryPolicy(deadline_s=5, first_delay_s=0.001, max_delay_s=0.001),
        clock=lambda: float(next(ticks)),
    )
    with pytest.raises(DatabaseGone) as raised:
        await run.run(good_rows(range(2, 2000)), stream=stream)
    gone = raised.value
    assert gone.done_through == 39
    assert gone.waited_s >= 5
    assert isinstance(gone.error, outage)
    # Every row up to that line has its result; none of the rows the database refused has.
    done = {result.line for result in recorder.results}
    assert set(range(2, 40)) <= done
    assert not done & set(range(40, 2000))


async def test_a_success_ends_the_outage_so_short_outages_never_add_up() -> None:
    ticks = itertools.count()
    calls = 0

    async def execute(command: IngestLead) -> LeadIngested:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise ServiceUnavailable()  # every other attempt, for 200 rows
        return lead_for(command)

    run = runner(
        execute,
        Recorder(),
        concurrency=1,
        retry=RetryPolicy(deadline_s=3, first_delay_s=0.001, max_delay_s=0.001),
        clock=lambda: float(next(ticks)),
    )
    tally = await run.run(good_rows(range(2, 202)))
    assert tally.created == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_a_read_error_is_raised_after_the_rows_before_it_are_done(stream: bool) -> None:
    def rows() -> Iterator[Row | BadRow]:
        yield from good_rows(range(2, 600))
        raise OSError("disk on fire")

    async def execute(command: IngestLead) -> LeadIngested:
        return lead_for(command)

    recorder = Recorder()
    run = runner(execute, recorder)
    with pytest.raises(OSError, match="disk on fire"):
        await run.run(rows(), stream=stream)
    assert sorted(result.line for result in recorder.results) == list(range(2, 600))
    # What the summary of a file that could not be read to its end is made of.
    assert (run.tally, run.done_through()) == (Tally(rows=598, created=598), 599)


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_takes_no_more_rows_and_lets_the_rows_in_flight_finish(stream: bool) -> None:
    in_flight: set[int] = set()
    executed: list[int] = []
    held = asyncio.Event()
    release = asyncio.Event()

    async def execute(command: IngestLead) -> LeadIngested:
        line = int((command.client_idempotency_key or "")[1:])
        in_flight.add(line)
        if line >= 50:
            if len(in_flight) == 4:
                held.set()
            await release.wait()
        in_flight.discard(line)
        executed.append(line)
        return lead_for(command)

    recorder = Recorder()
    run = runner(execute, recorder, concurrency=4)
    task = asyncio.create_task(run.run(good_rows(range(2, 10_000)), stream=stream))
    await asyncio.wait_for(held.wait(), 10)
    held_lines = set(in_flight)
    run.stop()
    await asyncio.sleep(0.05)
    assert not task.done()  # the rows in flight are waited for
    release.set()
    tally = await asyncio.wait_for(task, 10)
    assert run.stopped
    # Exactly the rows executed are reported, those held at stop() among them, and no other.
    assert sorted(result.line for result in recorder.results) == sorted(executed)
    assert held_lines <= set(executed)
    assert tally == Tally(rows=len(executed), created=len(executed))
    assert len(executed) < 60
    assert run.done_through() == max(executed)
    assert set(range(2, run.done_through() + 1)) == set(executed)


async def test_stop_gives_up_on_a_row_waiting_for_the_database() -> None:
    refused = asyncio.Event()

    async def execute(command: IngestLead) -> LeadIngested:
        if command.client_idempotency_key == "k5":
            refused.set()
            raise ServiceUnavailable()
        return lead_for(command)

    recorder = Recorder()
    run = runner(
        execute,
        recorder,
        concurrency=1,
        retry=RetryPolicy(deadline_s=3600, first_delay_s=600, max_delay_s=600),
    )
    task = asyncio.create_task(run.run(good_rows(range(2, 100))))
    await asyncio.wait_for(refused.wait(), 10)
    await asyncio.sleep(0.05)  # line 5 is in its first 600 s backoff
    run.stop()
    tally = await asyncio.wait_for(task, 5)  # not a DatabaseGone, and not 600 s
    assert tally == Tally(rows=3, created=3)
    assert run.done_through() == 4


async def test_no_rows_is_an_empty_tally() -> None:
    async def execute(command: IngestLead) -> LeadIngested:
        raise AssertionError("no row to execute")

    assert await runner(execute, Recorder()).run(iter([])) == Tally()
