"""`leads import` against PostgreSQL: the same IngestLead as HTTP, row by row, with results.

In-process runs call `cli.main.main` on a thread (it runs its own event loop); the runs that
need a real standard input, a terminal or a memory measurement start `python -m cli`.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.import_summary import parse_summary
from cli.main import main
from domain.idempotency import lead_id_for
from infrastructure.database_problems import redact_url
from infrastructure.local_postgres import free_port
from tests.support import ROOT, Catalog, posix_only, write

SUMMARY = re.compile(
    r"imported (\d+) rows: (\d+) created, (\d+) replayed, (\d+) rejected "
    r"in \d+\.\d\d s \(\d+\.\d rows/s\)"
)


@pytest.fixture
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


async def leads_import(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = await asyncio.to_thread(main, ["import", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def counts(out: str) -> tuple[int, ...]:
    """(rows, created, replayed, rejected) from the summary, which must be the last line."""
    found = SUMMARY.fullmatch(out.splitlines()[-1])
    assert found is not None, out
    assert parse_summary(out) is not None  # the benchmark reads the same line
    return tuple(int(group) for group in found.groups())


async def stored(engine: AsyncEngine, source_id: int) -> list[dict[str, object]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT lead_id, idempotency_key, idempotency_key_origin, email, phone, "
                "normalized_phone, first_name, is_test, attributes, received_host, "
                "received_path FROM leads WHERE source_id = :s ORDER BY email"
            ),
            {"s": source_id},
        )
        return [dict(row._mapping) for row in rows]


async def test_a_csv_file_creates_its_leads_and_importing_it_again_creates_nothing(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    key = source.source_key
    assert key is not None
    order = f"order-{uuid.uuid4().hex[:8]}"
    path = write(
        tmp_path,
        "leads.csv",
        "source_key,idempotency_key,email,phone,first_name,is_test,utm_campaign\n"
        f"{key},,Jane.Doe@Example.com,(415) 555-2671,Jane,,spring\n"
        f"{key},{order},sam@example.com,,Sam,true,\n"
        f"{key.upper()},,kim@example.com,4155550100,,0,fall\n",
    )
    status, out, err = await leads_import(capsys, path)
    assert (status, err) == (0, "")
    assert counts(out) == (3, 3, 0, 0)

    leads = await stored(engine, source.source_id)
    assert [lead["email"] for lead in leads] == [
        "Jane.Doe@Example.com",
        "kim@example.com",
        "sam@example.com",
    ]
    jane, kim, sam = leads
    assert jane["phone"] == "(415) 555-2671"
    assert jane["normalized_phone"] == "+14155552671"
    assert jane["attributes"] == {"utm_campaign": "spring"}
    assert jane["idempotency_key_origin"] == "derived"
    assert kim["attributes"] == {"utm_campaign": "fall"}
    assert (kim["is_test"], sam["is_test"]) == (False, True)
    assert sam["attributes"] == {}
    assert (sam["idempotency_key"], sam["idempotency_key_origin"]) == (order, "client")
    assert sam["lead_id"] == lead_id_for(source.source_id, order)
    assert {(lead["received_host"], lead["received_path"]) for lead in leads} == {
        (None, "/import/leads.csv")
    }

    status, out, err = await leads_import(capsys, path)
    assert (status, err) == (0, "")
    assert counts(out) == (3, 0, 3, 0)
    assert await stored(engine, source.source_id) == leads


async def test_a_mixed_file_gives_exactly_these_results(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    sid = source.source_id
    k = f"k-{uuid.uuid4().hex[:8]}"
    path = write(
        tmp_path,
        "mixed.csv",
        "source_id,idempotency_key,email,phone,note\n"
        f"{sid},{k},a@example.com,,first\n"  # 2: created
        f"{sid},{k}-3,b@example.com\n"  # 3: ragged
        f"999999999999,{k}-4,c@example.com,,\n"  # 4: unknown source
        f'{sid},{k}-5,"d"@example.com,,\n'  # 5: bad quoting
        f"{sid},,,,no contact\n"  # 6: nothing to derive a key from
        f"{sid},,e@example.com,4155550100,\n"  # 7: created, derived key
        f"{sid},{k},a@example.com,,again\n"  # 8: replay of line 2
        f"{sid},{k}-9,{'x' * 321},,\n"  # 9: email too long
        f",{k}-10,f@example.com,,\n"  # 10: no source
        f"{sid},bad key,g@example.com,,\n",  # 11: malformed idempotency key
    )
    results = tmp_path / "results.csv"
    status, out, err = await leads_import(
        capsys, path, "--results", str(results), "--concurrency", "1"
    )
    assert (status, err) == (1, "")
    assert counts(out) == (10, 2, 1, 7)

    derived = next(lead for lead in await stored(engine, sid) if lead["email"] == "e@example.com")
    first_id = lead_id_for(sid, k)
    assert results.read_text("utf-8") == (
        "line,outcome,lead_id,source_id,idempotency_key,error_code,error_message\n"
        f"2,created,{first_id},{sid},{k},,\n"
        "3,rejected,,,,invalid_request,"
        "The row has 3 cells but the header has 5 columns. (reason=ragged_row)\n"
        "4,rejected,,,,invalid_source,"
        "source_id does not name an active source. (reason=not_found)\n"
        "5,rejected,,,,invalid_request,"
        "\"The row is not valid CSV: ',' expected after '\"\"'. (reason=malformed_csv)\"\n"
        "6,rejected,,,,idempotency_derivation_failed,"
        '"No idempotency key was given and none can be derived: send an email or a phone. '
        '(required_any_of=[""email"",""phone""])"\n'
        f"7,created,{derived['lead_id']},{sid},{derived['idempotency_key']},,\n"
        f"8,replayed,{first_id},{sid},{k},,\n"
        "9,rejected,,,,invalid_request,"
        '"The request is not valid. (reason=too_long, field=email)"\n'
        "10,rejected,,,,unmapped_source,"
        '"The row names no source: give it a source_id or source_key column, '
        'or pass --source-id or --source-key."\n'
        "11,rejected,,,,invalid_idempotency_key_format,"
        "The idempotency key must be 1 to 255 printable ASCII characters. "
        "(reason=invalid_characters)\n"
    )
    assert len(await stored(engine, sid)) == 2


async def test_concurrent_results_hold_one_line_per_row(
    database: str, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = await catalog.source()
    nonce = uuid.uuid4().hex[:8]
    lines = [f"{source.source_id},{nonce}-{i},lead{i}@example.com" for i in range(300)]
    lines[100] = f"{source.source_id},{nonce}-100"  # ragged
    path = write(tmp_path, "many.csv", "source_id,idempotency_key,email\n" + "\n".join(lines))
    results = tmp_path / "results.csv"
    status, out, _ = await leads_import(capsys, path, "--results", str(results))
    assert status == 1
    assert counts(out) == (300, 299, 0, 1)
    body = results.read_text("utf-8").splitlines()[1:]
    assert sorted(int(line.split(",")[0]) for line in body) == list(range(2, 302))
    assert [line.split(",")[1] for line in body].count("rejected") == 1


async def test_a_byte_order_mark_is_not_part_of_the_first_field_name(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    path = write(
        tmp_path,
        "excel.csv",
        b"\xef\xbb\xbfsource_id,email\r\n" + f"{source.source_id},bom@example.com\r\n".encode(),
    )
    status, out, _ = await leads_import(capsys, path)
    assert (status, counts(out)) == (0, (1, 1, 0, 0))
    [lead] = await stored(engine, source.source_id)
    assert (lead["email"], lead["attributes"]) == ("bom@example.com", {})


async def test_json_lines_with_bad_lines_reject_those_lines_only(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    sid = source.source_id
    broken = f'{{"source_id": {sid}, "email": "broken@example.com"'
    path = write(
        tmp_path,
        "leads.jsonl",
        f'{{"source_id": {sid}, "phone": 4155550100, "is_test": true, "ad": {{"id": [1, 2]}}}}\n'
        "\n"
        f"{broken}\n"
        f'["source_id", {sid}]\n'
        f'{{"Source_ID": "{sid}", "EMAIL": "upper@example.com"}}\n',
    )
    results = tmp_path / "results.csv"
    status, out, err = await leads_import(
        capsys, path, "--results", str(results), "--concurrency", "1"
    )
    assert (status, err) == (1, "")
    assert counts(out) == (4, 2, 0, 2)
    lines = results.read_text("utf-8").splitlines()
    assert lines[2] == (
        "3,rejected,,,,invalid_request,"
        f"\"The line is not valid JSON: Expecting ',' delimiter at column {len(broken) + 1}. "
        '(reason=malformed_json)"'
    )
    assert lines[3] == (
        "4,rejected,,,,invalid_request,The line is not a JSON object. (reason=not_an_object)"
    )
    leads = await stored(engine, sid)
    assert [(lead["email"], lead["phone"], lead["is_test"]) for lead in leads] == [
        ("upper@example.com", None, False),
        (None, "4155550100", True),
    ]
    assert leads[1]["attributes"] == {"ad": {"id": [1, 2]}}
    assert leads[0]["received_path"] == "/import/leads.jsonl"


def run_cli(
    database_url: str, *argv: str, stdin: bytes = b"", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "import", *argv],
        input=stdin.decode(),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def test_standard_input_with_its_format(
    database_url: str, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    rows = f"source_id,email\n{source.source_id},stdin@example.com\n".encode()
    result = await asyncio.to_thread(run_cli, database_url, "-", "--format", "csv", stdin=rows)
    assert (result.returncode, result.stderr) == (0, "")
    assert counts(result.stdout) == (1, 1, 0, 0)
    [lead] = await stored(engine, source.source_id)
    assert (lead["email"], lead["received_path"]) == ("stdin@example.com", "/import/-")

    result = await asyncio.to_thread(run_cli, database_url, "-", stdin=rows)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "leads: <stdin>: give the format of standard input: --format csv or --format jsonl\n"
    )


async def test_source_options_apply_to_every_row_and_a_row_naming_another_is_rejected(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    other = await catalog.source()
    sid, key = source.source_id, source.source_key
    path = write(
        tmp_path,
        "sourced.csv",
        "source_id,source_key,email\n"
        ",,plain@example.com\n"
        f"{sid},,same-id@example.com\n"
        f",{key},own-key@example.com\n"
        f"{other.source_id},,other-id@example.com\n"
        f",{other.source_key},other-key@example.com\n",
    )
    results = tmp_path / "results.csv"
    status, out, _ = await leads_import(
        capsys, path, "--source-id", str(sid), "--results", str(results), "--concurrency", "1"
    )
    assert status == 1
    assert counts(out) == (5, 3, 0, 2)
    lines = results.read_text("utf-8").splitlines()
    assert lines[4] == (
        "5,rejected,,,,invalid_request,\"The field 'source_id' was given twice with "
        'different values. (reason=conflicting_values, field=source_id)"'
    )
    assert lines[5] == (
        "6,rejected,,,,invalid_source_key,source_key does not belong to the source named by "
        "source_id. (reason=conflicts_with_source_id)"
    )
    assert len(await stored(engine, sid)) == 3
    assert await stored(engine, other.source_id) == []

    path = write(
        tmp_path,
        "keyed.csv",
        f"source_id,email\n,k1@example.com\n{other.source_id},k2@example.com\n",
    )
    status, out, _ = await leads_import(
        capsys, path, "--source-key", str(key).upper(), "--results", str(results)
    )
    assert status == 1
    assert counts(out) == (2, 1, 0, 1)
    assert "3,rejected,,,,invalid_source_key," in results.read_text("utf-8")


async def test_a_lead_posted_over_http_and_then_imported_is_a_replay_and_back(
    database: str,
    catalog: Catalog,
    client: httpx.AsyncClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    posted = {
        "source_id": source.source_id,
        "email": "Http.Then@Example.com",
        "phone": "(415) 555-0199",
        "utm_campaign": "spring",
    }
    response = await client.post("/api/leads", json=posted)
    assert response.status_code == 201
    path = write(
        tmp_path,
        "after-http.csv",
        "source_id,email,phone,utm_campaign,first_name\n"
        f"{source.source_id}, http.then@example.com ,+1 415 555 0199,spring,\n"
        f"{source.source_id},import.first@example.com,,fall,\n",
    )
    results = tmp_path / "results.csv"
    status, out, _ = await leads_import(
        capsys, path, "--results", str(results), "--concurrency", "1"
    )
    assert (status, counts(out)) == (0, (2, 1, 1, 0))
    lines = [line.split(",") for line in results.read_text("utf-8").splitlines()[1:]]
    assert lines[0][:5] == [
        "2",
        "replayed",
        response.json()["lead_id"],
        str(source.source_id),
        response.json()["idempotency_key"],
    ]

    again = await client.post(
        "/api/leads",
        data={
            "source_id": str(source.source_id),
            "email": "import.first@example.com",
            "utm_campaign": "fall",
        },
    )
    assert again.status_code == 200
    assert again.json()["lead_id"] == lines[1][2]


async def test_a_source_that_requires_its_key_takes_rows_given_it_by_option(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.intake_source(require_key=True)
    assert source.source_key is not None
    path = write(tmp_path, "keyed.csv", "email\nopt.a@example.com\nopt.b@example.com\n")
    results = tmp_path / "results.csv"
    status, out, _ = await leads_import(
        capsys, path, "--source-id", str(source.source_id), "--results", str(results)
    )
    assert (status, counts(out)) == (1, (2, 0, 0, 2))
    assert results.read_text("utf-8").count(",invalid_source_key,") == 2
    assert "(reason=required)" in results.read_text("utf-8")
    assert await stored(engine, source.source_id) == []

    status, out, _ = await leads_import(
        capsys, path, "--source-id", str(source.source_id), "--source-key", source.source_key
    )
    assert (status, counts(out)) == (0, (2, 2, 0, 0))


async def test_a_source_that_requires_its_key_takes_rows_with_a_source_key_column(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.intake_source(require_key=True)
    assert source.source_key is not None
    sid, key = source.source_id, source.source_key
    path = write(
        tmp_path,
        "column.csv",
        "source_id,source_key,email\n"
        f"{sid},{key.upper()},col.a@example.com\n"  # 2: created
        f"{sid},,col.b@example.com\n"  # 3: no key
        f",{key},col.c@example.com\n",  # 4: created, selected by its key
    )
    results = tmp_path / "results.csv"
    status, out, _ = await leads_import(
        capsys, path, "--results", str(results), "--concurrency", "1"
    )
    assert (status, counts(out)) == (1, (3, 2, 0, 1))
    rejected = results.read_text("utf-8").splitlines()[2]
    assert rejected.startswith("3,rejected,,,,invalid_source_key,")
    assert rejected.endswith("(reason=required)")
    emails = [lead["email"] for lead in await stored(engine, sid)]
    assert emails == ["col.a@example.com", "col.c@example.com"]


async def test_allowed_networks_do_not_apply_to_imports_which_store_no_client(
    database: str,
    catalog: Catalog,
    engine: AsyncEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.intake_source(networks=("203.0.113.0/24",))
    path = write(tmp_path, "networks.csv", "email\nnet@example.com\n")
    status, out, _ = await leads_import(capsys, path, "--source-id", str(source.source_id))
    assert (status, counts(out)) == (0, (1, 1, 0, 0))
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT client_ip, user_agent FROM leads WHERE source_id = :s"),
                {"s": source.source_id},
            )
        ).one()
    assert tuple(row) == (None, None)


DIRECTORY = "<a directory>"


@pytest.mark.parametrize(
    ("argv", "content", "message"),
    [
        (
            ["{dir}/missing.csv"],
            None,
            "{dir}/missing.csv: cannot read it: No such file or directory",
        ),
        (["{dir}/folder.csv"], DIRECTORY, "{dir}/folder.csv: cannot read it: Is a directory"),
        (
            ["{dir}/leads.txt"],
            "",
            "{dir}/leads.txt: cannot tell the format from the extension .txt: "
            "name it .csv or .jsonl, or pass --format csv|jsonl",
        ),
        (
            ["{dir}/leads.csv"],
            "",
            "{dir}/leads.csv: the file is empty: a CSV file starts with a header row",
        ),
        (
            ["{dir}/leads.csv", "--source-id", "seven"],
            "email\n",
            "--source-id must be a source id: digits, 1 to 2^63-1",
        ),
        (
            ["{dir}/leads.csv", "--source-key", "not a key!"],
            "email\n",
            "--source-key is not a source key: 1 to 128 of a-z 0-9 . _ ~ - "
            "(compared lower-cased), starting with a letter or digit",
        ),
        (
            ["{dir}/leads.csv", "--results", "{dir}/no/such/dir/results.csv"],
            "email\n",
            "{dir}/no/such/dir/results.csv: cannot write it: No such file or directory",
        ),
    ],
)
def test_unusable_files_and_options_exit_2_with_one_line(
    argv: list[str],
    content: str | None,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens there: each of these must fail before any database is needed.
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    argv = [arg.format(dir=tmp_path) for arg in argv]
    if content is DIRECTORY:
        (tmp_path / Path(argv[0]).name).mkdir()
    elif content is not None:
        (tmp_path / Path(argv[0]).name).write_text(content, encoding="utf-8")
    status = main(["import", *argv])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == f"leads: {message.format(dir=tmp_path)}\n"


def test_bad_option_values_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for option, value, problem in [
        ("--concurrency", "0", "must be 1 to 1000, got 0"),
        ("--deadline", "soon", "not a number of seconds: 'soon'"),
        ("--format", "xml", "invalid choice: 'xml'"),
    ]:
        with pytest.raises(SystemExit) as raised:
            main(["import", "leads.csv", option, value])
        assert raised.value.code == 2
        assert problem in capsys.readouterr().err


# The file's reader is closed before the file: a reader left to the garbage collector would
# touch a closed file ("Exception ignored in … I/O operation on closed file").
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_no_usable_database_exits_2_with_one_line(
    new_database,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path, "leads.csv", "source_id,email\n1,a@example.com\n")
    port = free_port()
    unmigrated: str = new_database()
    for url, message in [
        (
            f"postgresql://postgres@127.0.0.1:{port}/leads",
            f"no PostgreSQL answers at postgresql://postgres@127.0.0.1:{port}/leads: start "
            "PostgreSQL (e.g. `docker compose up -d postgres`) or set DATABASE_URL",
        ),
        (
            unmigrated,
            f"the database schema is not migrated at {redact_url(unmigrated)}: "
            "run `leads db upgrade`",
        ),
        (
            unmigrated + "_missing",
            f"the database does not exist at {redact_url(unmigrated + '_missing')}: "
            "create it, or set DATABASE_URL to an existing database",
        ),
    ]:
        monkeypatch.setenv("DATABASE_URL", url)
        status = main(["import", path])
        out, err = capsys.readouterr()
        assert (status, out, err) == (2, "", f"leads: {message}\n")


@posix_only
async def test_a_progress_bar_is_drawn_only_on_a_terminal(
    database_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    source = await catalog.source()
    nonce = uuid.uuid4().hex[:8]
    path = write(
        tmp_path,
        "bar.csv",
        "source_id,idempotency_key,email\n"
        + "".join(f"{source.source_id},{nonce}-{i},p{i}@example.com\n" for i in range(50)),
    )
    result = await asyncio.to_thread(run_cli, database_url, path)
    assert (result.returncode, result.stderr) == (0, "")

    import fcntl  # POSIX only, as the pseudo-terminal is
    import pty
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        process = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli", "import", path],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url},
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=120,
            check=False,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert process.returncode == 0
    assert counts(process.stdout.decode()) == (50, 0, 50, 0)
    assert b"50 rows" in drawn
    assert b"rows/s" in drawn


RSS_PROBE = (
    "import resource, sys\n"
    "from cli.main import main\n"
    "status = main(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "sys.exit(status)\n"
)


def peak_rss_kib(database_url: str, tmp_path: Path, rows: int, source_id: int) -> int:
    """Peak RSS of `leads import` over a file of `rows` rows, most rejected before the
    database (a malformed source_id: fast), every 100th looked up in it (an unknown source)."""
    path = tmp_path / f"rows-{rows}.csv"
    note = "n" * 400
    with path.open("w", encoding="utf-8") as out:
        out.write("source_id,email,phone,note\n")
        for i in range(rows):
            sid = "999999999999" if i % 100 == 0 else f"x{source_id}"
            out.write(f"{sid},lead{i}@example.com,4155550{i % 1000:03d},{note}\n")
    measured = tmp_path / f"rss-{rows}"
    results = tmp_path / f"results-{rows}.csv"
    argv = [sys.executable, "-c", RSS_PROBE, str(measured), "import", str(path)]
    process = subprocess.run(
        [*argv, "--results", str(results)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert process.returncode == 1, process.stderr
    assert counts(process.stdout) == (rows, 0, 0, rows)
    assert sum(1 for _ in results.open(encoding="utf-8")) == rows + 1
    return int(measured.read_text())


@posix_only  # the probe's peak RSS is getrusage's
async def test_a_100k_row_file_streams_in_bounded_memory(
    database_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    source = await catalog.source()
    small = await asyncio.to_thread(peak_rss_kib, database_url, tmp_path, 1_000, source.source_id)
    large = await asyncio.to_thread(peak_rss_kib, database_url, tmp_path, 100_000, source.source_id)
    # The 100k-row file is about 46 MB; holding its rows (or their results) would add far
    # more than this to the peak.
    assert large - small < 20 * 1024, (small, large)
