"""`leads import` when the database goes away mid-file: it retries until its deadline, stops
with exit 2 naming the last line done, and re-running the file then is safe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from infrastructure.local_postgres import LocalPostgres
from tests.faults.harness import DB_TIMEOUT_S, database_url, prepare_database, stored_leads
from tests.support import ROOT

pytestmark = pytest.mark.faults


async def wait_for_leads(url: str, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while len(await stored_leads(url)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} leads after {timeout_s} s"
        await asyncio.sleep(0.05)


async def test_an_outage_past_the_deadline_stops_the_import_and_re_running_is_safe(
    cluster: LocalPostgres, tmp_path: Path
) -> None:
    cluster.start()
    source = await prepare_database(cluster)
    url = database_url(cluster)
    nonce = uuid.uuid4().hex[:8]
    header = "source_key,idempotency_key,email\n"
    rows = [f"{source.source_key},{nonce}-{i},lead{i}@example.com\n" for i in range(15)]
    results = tmp_path / "results.csv"
    env = {**os.environ, "DATABASE_URL": url, "LEADS_DB_TIMEOUT_S": str(DB_TIMEOUT_S)}
    argv = [sys.executable, "-m", "cli", "import", "-", "--format", "csv"]
    process = await asyncio.create_subprocess_exec(
        *argv,
        *("--deadline", "2", "--concurrency", "2", "--results", str(results)),
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None
        # Lines 2 to 11 go in while the database is up; the rest once it is gone.
        process.stdin.write((header + "".join(rows[:10])).encode())
        await process.stdin.drain()
        await wait_for_leads(url, 10)
        await asyncio.to_thread(cluster.stop, "fast")
        process.stdin.write("".join(rows[10:]).encode())
        process.stdin.close()
        output, errors = await asyncio.wait_for(process.communicate(), 120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    out, err = output.decode(), errors.decode()
    assert process.returncode == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("leads: stopped after ")
    assert "without a usable database (" in err
    assert err.endswith("; every row up to line 11 is done; re-running the import is safe\n")
    assert "Traceback" not in err
    done = results.read_text("utf-8").splitlines()[1:]
    assert sorted(int(line.split(",")[0]) for line in done) == list(range(2, 12))

    await asyncio.to_thread(cluster.start)
    again = await asyncio.to_thread(
        subprocess.run,
        argv,
        input=header + "".join(rows),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines()[-1].startswith(
        "imported 15 rows: 5 created, 10 replayed, 0 rejected in "
    )
    assert sorted((await stored_leads(url)).values()) == [1] * 15
