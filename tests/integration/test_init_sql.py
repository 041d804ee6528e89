"""docker/initdb/10-leads.sql: current, and it builds what `leads db setup` builds.

The compose file's `postgres` service runs the script on its first start; it must give the
same schema, revision and catalog as the migrations plus `leads catalog apply` of the example.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from cli.catalog import load_catalog_file
from infrastructure.init_sql import INIT_SQL_PATH, init_sql
from infrastructure.schema_revision import head_revision
from tests.support import ROOT

EXAMPLE_CATALOG = ROOT / "examples" / "catalog.yaml"

# Everything migrations create in the public schema, in a comparable form.
SCHEMA_FINGERPRINT = """
SELECT json_build_object(
  'columns', (SELECT json_agg(json_build_array(table_name, column_name, data_type,
                                               column_default, is_nullable, is_identity)
                              ORDER BY table_name, column_name)
                FROM information_schema.columns WHERE table_schema = 'public'),
  'constraints', (SELECT json_agg(json_build_array(conrelid::regclass::text, conname,
                                                   pg_get_constraintdef(oid))
                                  ORDER BY conrelid::regclass::text, conname)
                    FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  'indexes', (SELECT json_agg(json_build_array(indexname, indexdef) ORDER BY indexname)
                FROM pg_indexes WHERE schemaname = 'public'),
  'triggers', (SELECT json_agg(json_build_array(tgname, pg_get_triggerdef(oid)) ORDER BY tgname)
                 FROM pg_trigger WHERE NOT tgisinternal),
  'functions', (SELECT json_agg(json_build_array(proname, prosrc) ORDER BY proname)
                  FROM pg_proc WHERE pronamespace = 'public'::regnamespace)
)::text
"""
CATALOG_ROWS = """
SELECT json_build_object(
  'markets', (SELECT json_agg(m ORDER BY market_id) FROM
                (SELECT market_id, code, name, phone_region FROM markets) m),
  'verticals', (SELECT json_agg(v ORDER BY vertical_id) FROM
                  (SELECT vertical_id, code, name FROM verticals) v),
  'offers', (SELECT json_agg(o ORDER BY offer_id) FROM
               (SELECT offer_id, code, name, market_id, vertical_id, is_active FROM offers) o),
  'sources', (SELECT json_agg(s ORDER BY source_id) FROM
                (SELECT source_id, code, name, offer_id, source_key, is_active FROM sources) s),
  'mappings', (SELECT json_agg(h ORDER BY mapping_id) FROM
                 (SELECT mapping_id, source_id, hostname, path_prefix, is_active
                    FROM source_http_mappings) h),
  'revision', (SELECT json_agg(version_num) FROM alembic_version)
)::text
"""


async def _read(url: str, query: str) -> object:
    connection = await asyncpg.connect(url)
    try:
        return json.loads(await connection.fetchval(query))
    finally:
        await connection.close()


def _run_script(url: str, script: Path) -> None:
    """As the postgres image runs its init scripts: psql, stopping at the first error."""
    psql = shutil.which("psql")
    if psql is None:
        sql = script.read_text(encoding="utf-8")

        async def execute() -> None:
            connection = await asyncpg.connect(url)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        asyncio.run(execute())
        return
    subprocess.run(
        [psql, "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(script)],
        check=True,
        capture_output=True,
    )


def _leads(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_committed_init_sql_is_what_leads_db_init_sql_writes() -> None:
    expected = await init_sql(load_catalog_file(EXAMPLE_CATALOG), "examples/catalog.yaml")
    committed = (ROOT / INIT_SQL_PATH).read_bytes().decode("utf-8")
    assert committed == expected, (
        f"{INIT_SQL_PATH} is out of date: run `uv run leads db init-sql --output {INIT_SQL_PATH}`"
    )


def test_init_sql_builds_the_database_that_leads_db_setup_builds(
    new_database: Callable[[], str],
) -> None:
    from_script, from_setup = new_database(), new_database()
    _run_script(from_script, ROOT / INIT_SQL_PATH)
    setup = _leads("db", "setup", url=from_setup)
    assert setup.returncode == 0, setup.stderr
    assert "example catalog loaded" in setup.stdout

    for query in (SCHEMA_FINGERPRINT, CATALOG_ROWS):
        built = asyncio.run(_read(from_script, query))
        assert built == asyncio.run(_read(from_setup, query))
    rows = asyncio.run(_read(from_script, CATALOG_ROWS))
    assert isinstance(rows, dict)
    assert rows["revision"] == [head_revision()]
    assert len(rows["sources"]) == len(load_catalog_file(EXAMPLE_CATALOG)["sources"])  # type: ignore[arg-type]


def test_leads_db_setup_twice_leaves_a_filled_catalog_alone(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    _run_script(url, ROOT / INIT_SQL_PATH)
    before = asyncio.run(_read(url, CATALOG_ROWS))
    again = _leads("db", "setup", url=url)
    assert again.returncode == 0, again.stderr
    assert "catalog left as it was" in again.stdout
    assert asyncio.run(_read(url, CATALOG_ROWS)) == before


def test_init_sql_with_a_broken_catalog_is_one_line_and_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.yaml"
    broken.write_text("offers: [{code: o, name: O, market: nowhere, vertical: v}]\n")
    result = _leads("db", "init-sql", "--catalog", str(broken), url="postgresql://unused/x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"leads: {broken.as_posix()}: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("output_flag", ["--output", "-o"])
def test_init_sql_writes_lf_utf8_to_a_file(tmp_path: Path, output_flag: str) -> None:
    target = tmp_path / "init.sql"
    result = _leads("db", "init-sql", output_flag, str(target), url="postgresql://unused/x")
    assert result.returncode == 0, result.stderr
    written = target.read_bytes()
    assert b"\r\n" not in written
    assert written == (ROOT / INIT_SQL_PATH).read_bytes()
