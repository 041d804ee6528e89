"""`leads import` over files that go wrong as they are read: a stray quote costs one row, a file
truncated or failing mid-read stops the import with its summary and one line, exit 2."""

from __future__ import annotations

import asyncio
import errno
import io
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import cli.import_leads
from cli.main import main
from tests.support import Catalog, write

SUMMARY = re.compile(
    r"imported (\d+) rows: (\d+) created, (\d+) replayed, (\d+) rejected "
    r"in \d+\.\d\d s \(\d+\.\d rows/s\)\n"
)


@pytest.fixture
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    # Rows held on a lock by these tests must not time out meanwhile.
    monkeypatch.setenv("LEADS_DB_TIMEOUT_S", "60")
    return database_url


async def leads_import(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = await asyncio.to_thread(main, ["import", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def counts(out: str) -> tuple[int, ...]:
    found = SUMMARY.fullmatch(out)
    assert found is not None, out
    return tuple(int(group) for group in found.groups())


def result_lines(results: Path) -> list[int]:
    return sorted(int(line.split(",")[0]) for line in results.read_text("utf-8").splitlines()[1:])


async def stored_count(engine: AsyncEngine, source_id: int) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT count(*) FROM leads WHERE source_id = :s"), {"s": source_id}
        )
    return int(found)


@asynccontextmanager
async def inserts_held(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """New leads wait (SHARE blocks INSERT only) until the block ends."""
    async with engine.connect() as connection:
        await connection.execute(text("LOCK TABLE leads IN SHARE MODE"))
        yield connection
        await connection.rollback()


async def wait_for_held_inserts(engine: AsyncEngine, count: int) -> None:
    async with asyncio.timeout(60):
        while True:
            async with engine.connect() as connection:
                waiting = await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks "
                        "WHERE relation = 'leads'::regclass AND NOT granted"
                    )
                )
            if waiting >= count:
                return
            await asyncio.sleep(0.02)


def cut_mid_line(path: str, size: int) -> None:
    """What rewriting the file in place with its first half does (a shorter export, say)."""
    Path(path).write_bytes(Path(path).read_bytes()[:size])


def many_rows(tmp_path: Path, source_id: int, rows: int) -> str:
    nonce = uuid.uuid4().hex[:8]
    body = "".join(f"{source_id},{nonce}-{i}@example.com\n" for i in range(rows))
    return write(tmp_path, "many.csv", "source_id,email\n" + body)


async def test_a_stray_quote_costs_its_row_and_the_rows_after_it_are_imported(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    sid = source.source_id
    path = write(
        tmp_path,
        "stray.csv",
        f'source_id,email,note\n{sid},a@x.com,"oops\n{sid},b@x.com,fine\n{sid},c@x.com,fine\n',
    )
    results = tmp_path / "results.csv"
    status, out, err = await leads_import(
        capsys, path, "--results", str(results), "--concurrency", "1"
    )
    assert (status, err, counts(out)) == (1, "", (3, 2, 0, 1))
    lines = results.read_text("utf-8").splitlines()
    assert lines[1] == (
        "2,rejected,,,,invalid_request,"
        "The row's quoted cell is not closed before the end of the file. (reason=unclosed_quote)"
    )
    assert [line.split(",")[:2] for line in lines[2:]] == [["3", "created"], ["4", "created"]]
    assert await stored_count(engine, sid) == 2


async def test_a_file_truncated_while_it_is_imported_stops_with_what_was_done(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    path = many_rows(tmp_path, source.source_id, 5_000)
    size = len(await asyncio.to_thread(Path(path).read_bytes))
    results = tmp_path / "results.csv"
    async with inserts_held(engine):
        # The reader stops a few rows ahead of the two held in the database.
        run = asyncio.ensure_future(
            leads_import(capsys, path, "--results", str(results), "--concurrency", "2")
        )
        await wait_for_held_inserts(engine, 2)
        cut_mid_line(path, size // 2 + 5)
    status, out, err = await asyncio.wait_for(run, 120)

    done = result_lines(results)
    last = done[-1]
    assert status == 2
    assert counts(out) == (last - 1, last - 1, 0, 0)
    assert err == (
        f"leads: {path}: the file shrank from {size} to {size // 2 + 5} bytes while it was read; "
        f"every row up to line {last} is done; re-running the import is safe\n"
    )
    # The rows read before the truncation (a buffer's worth), all of them done; none read
    # after it, though half the file (to about line 2500) was still there.
    assert done == list(range(2, last + 1))
    assert last < 1_000
    assert await stored_count(engine, source.source_id) == last - 1


class FailingAfter(io.RawIOBase):
    """The file, until `after` bytes are read: then the error a vanished network file gives."""

    def __init__(self, path: str, after: int) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115
        self._left = after

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            raise OSError(errno.ESTALE, "Stale file handle")
        view = memoryview(buffer)[: self._left]
        read = self._file.readinto(view) or 0
        self._left -= read
        return read

    def close(self) -> None:
        self._file.close()
        super().close()


async def test_a_file_that_fails_mid_read_stops_with_what_was_done(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = await catalog.source()
    path = many_rows(tmp_path, source.source_id, 2_000)

    def open_failing(file: str) -> BinaryIO:
        return io.BufferedReader(FailingAfter(file, 20_000))  # type: ignore[return-value]

    monkeypatch.setattr(cli.import_leads, "_open_input", open_failing)
    results = tmp_path / "results.csv"
    status, out, err = await leads_import(capsys, path, "--results", str(results))

    done = result_lines(results)
    last = done[-1]
    assert status == 2
    assert counts(out) == (last - 1, last - 1, 0, 0)
    assert err == (
        f"leads: {path}: cannot read it: Stale file handle; "
        f"every row up to line {last} is done; re-running the import is safe\n"
    )
    assert done == list(range(2, last + 1))
    assert 100 < last < 2_000
    assert await stored_count(engine, source.source_id) == last - 1
