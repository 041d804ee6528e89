"""Ctrl-C (SIGINT) during `leads import`: the rows in flight finish, the summary counts what was
done, one line says up to which line, exit 130, and nothing is reported that is not stored."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.test_import_file_problems import (
    counts,
    inserts_held,
    stored_count,
    wait_for_held_inserts,
)
from tests.support import ROOT, Catalog, posix_only, write

pytestmark = posix_only
CONCURRENCY = 4


async def wait_for_stored(engine: AsyncEngine, source_id: int, count: int) -> None:
    async with asyncio.timeout(120):
        while True:
            if await stored_count(engine, source_id) >= count:
                return
            await asyncio.sleep(0.05)


async def test_ctrl_c_lets_rows_in_flight_finish_and_prints_what_was_done(
    database_url: str, catalog: Catalog, engine: AsyncEngine, tmp_path: Path
) -> None:
    import signal

    source = await catalog.source()
    nonce = uuid.uuid4().hex[:8]
    path = write(
        tmp_path,
        "large.csv",
        "source_id,email\n"
        + "".join(f"{source.source_id},{nonce}-{i}@example.com\n" for i in range(20_000)),
    )
    results = tmp_path / "results.csv"
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cli", "import", path, "--results", str(results)),
        *("--concurrency", str(CONCURRENCY)),
        cwd=ROOT,
        # Rows held on the lock below must not time out meanwhile.
        env={**os.environ, "DATABASE_URL": database_url, "LEADS_DB_TIMEOUT_S": "60"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_for_stored(engine, source.source_id, 20)
        async with inserts_held(engine):
            before = await stored_count(engine, source.source_id)
            await wait_for_held_inserts(engine, CONCURRENCY)
            process.send_signal(signal.SIGINT)
            await asyncio.sleep(0.5)
            assert process.returncode is None, "exited with rows in flight"
        output, errors = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    out, err = output.decode(), errors.decode()

    assert process.returncode == 130, err
    stopped = re.fullmatch(
        r"leads: interrupted; every row up to line (\d+) is done; "
        r"re-running the import is safe\n",
        err,
    )
    assert stopped is not None, err
    # The rows held in flight at Ctrl-C finished; no row was taken after it.
    rows = before + CONCURRENCY
    assert counts(out) == (rows, rows, 0, 0)
    assert int(stopped[1]) == rows + 1
    lines = results.read_text("utf-8").splitlines()[1:]
    assert sorted(int(line.split(",")[0]) for line in lines) == list(range(2, rows + 2))
    # Each row reported created is stored, and only those.
    async with engine.connect() as connection:
        stored = set(
            await connection.scalars(
                text("SELECT lead_id::text FROM leads WHERE source_id = :s"),
                {"s": source.source_id},
            )
        )
    assert {line.split(",")[2] for line in lines} == stored


async def test_ctrl_c_while_standard_input_is_still_open_exits_130(
    database_url: str, catalog: Catalog, engine: AsyncEngine
) -> None:
    """The reading thread is then blocked on standard input: the run still ends with its
    summary and exit 130, no traceback and no crash of the interpreter on its way out."""
    import signal

    source = await catalog.source()
    nonce = uuid.uuid4().hex[:8]
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cli", "import", "-", "--format", "csv"),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout and process.stderr
    try:
        rows = "".join(f"{source.source_id},{nonce}-{i}@example.com\n" for i in range(5))
        process.stdin.write(f"source_id,email\n{rows}".encode())
        await process.stdin.drain()
        await wait_for_stored(engine, source.source_id, 5)
        process.send_signal(signal.SIGINT)  # standard input stays open
        await asyncio.wait_for(process.wait(), 60)
        out, err = (await process.stdout.read()).decode(), (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, err
    assert counts(out) == (5, 5, 0, 0)
    assert err == (
        "leads: interrupted; every row up to line 6 is done; re-running the import is safe\n"
    )
