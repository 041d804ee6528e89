"""`leads catalog …` as an operator runs it: exit statuses, output, and what gets written.

Each test points DATABASE_URL at a database of its own, so `check` and `export` see only
what the test put there.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.catalog_docs import ERRORS, FIELDS
from cli.serve import load_example_catalog
from domain.fields import KNOWN_FIELDS
from tests.support import leads, write

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
EXAMPLE_KEYS = {
    s["code"]: s["source_key"] for s in yaml.safe_load(EXAMPLE.read_text("utf-8"))["sources"]
}


def exported(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    status, out, _ = leads(capsys, "catalog", "export")
    assert status == 0
    document: dict[str, Any] = yaml.safe_load(out)
    return document


EMPTY = {"markets": [], "verticals": [], "offers": [], "sources": [], "mappings": []}


def test_apply_the_example_then_again_then_export(
    fresh_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = leads(capsys, "catalog", "apply", str(EXAMPLE), "--dry-run")
    assert (status, err) == (0, "")
    assert "would create source acme-solar-us" in out
    assert out.splitlines()[-1] == (
        "dry run: 16 to create, 0 to update, 0 unchanged; nothing was written"
    )
    assert exported(capsys) == EMPTY

    status, out, _ = leads(capsys, "catalog", "apply", str(EXAMPLE))
    assert status == 0
    assert "created mapping acme-solar-us leads.example.com/api/leads/acme" in out
    assert out.splitlines()[-1] == "catalog applied: 16 created, 0 updated, 0 unchanged"

    status, out, _ = leads(capsys, "catalog", "apply", str(EXAMPLE))
    assert out == "catalog applied: 0 created, 0 updated, 16 unchanged\n"

    document = exported(capsys)
    assert [m["code"] for m in document["markets"]] == ["gb", "us"]
    assert {s["code"]: s["source_key"] for s in document["sources"]} == EXAMPLE_KEYS
    exported_file = write(tmp_path, "exported.yaml", yaml.safe_dump(document))
    status, out, _ = leads(capsys, "catalog", "apply", exported_file)
    assert out == "catalog applied: 0 created, 0 updated, 16 unchanged\n"


def test_apply_reads_json_and_reports_updates(
    fresh_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = {
        "markets": [{"code": "de", "name": "Germany", "phone_region": "de"}],
        "verticals": [{"code": "solar", "name": "Solar"}],
    }
    path = write(tmp_path, "catalog.json", json.dumps(document))
    assert leads(capsys, "catalog", "apply", path)[0] == 0
    document["markets"][0]["name"] = "Deutschland"
    write(tmp_path, "catalog.json", json.dumps(document))
    _, out, _ = leads(capsys, "catalog", "apply", path)
    assert out == ("updated market de (name)\ncatalog applied: 0 created, 1 updated, 1 unchanged\n")
    assert exported(capsys)["markets"] == [
        {"code": "de", "name": "Deutschland", "phone_region": "DE"}
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "cannot read"),
        ("bad.yaml", "markets:\n  - code: us\n   name: [unclosed\n", "malformed YAML"),
        ("bad.json", '{"markets": [}', "malformed JSON at line 1"),
        ("empty.yaml", "# nothing\n", "the file is empty"),
        ("list.yaml", "- code: us\n", "must be a mapping with the sections"),
        ("deep.yaml", "x: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested more than 100 levels"),
        ("deep-block.yaml", "x:\n" + "- " * 100_000 + "y\n", "nested more than 100 levels"),
        (
            "deep.json",
            '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested more than 100 levels",
        ),
        (
            "repeated.yaml",
            "markets:\n  - code: a1\n    name: A\n    code: a2\n",
            'duplicate key "code" at line 4, column 5: keep one of them',
        ),
        (
            "sections.yaml",
            "markets: [{code: a, name: A}]\nverticals: []\nmarkets: [{code: b, name: B}]\n",
            'duplicate key "markets" at line 3, column 1',
        ),
        (
            "repeated.json",
            '{"markets": [{"code": "a1", "name": "A",\n  "code": "a2"}]}',
            'duplicate key "code" at line 2, column 3',
        ),
        (
            "ref.yaml",
            "markets: [{code: us, name: US}]\n"
            "verticals: [{code: solar, name: Solar}]\n"
            "offers: [{code: o, name: O, market: us, vertical: wind}]\n",
            'offers #1 "o": vertical: "wind" names no vertical',
        ),
        (
            "region.yaml",
            "markets: [{code: us, name: US}, {code: no, name: Norway, phone_region: NO}]\n",
            "markets #2: code: must be a string (got the bool False: in YAML, quote the value)",
        ),
        (
            "key.yaml",
            "markets: [{code: us, name: US}]\nverticals: [{code: v, name: V}]\n"
            "offers: [{code: o, name: O, market: us, vertical: v}]\n"
            "sources: [{code: s, name: S, offer: o, source_key: 'not a key'}]\n",
            'sources #1 "s": source_key: must match',
        ),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(
    fresh_database: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    content: str | None,
    message: str,
) -> None:
    path = str(tmp_path / name) if content is None else write(tmp_path, name, content)
    status, out, err = leads(capsys, "catalog", "apply", path)
    assert status == 2
    assert out == ""
    assert err.startswith(f"leads: {path}")
    assert message in err
    assert err.count("\n") == 1
    assert "not a key" not in err
    assert exported(capsys) == EMPTY


def test_apply_refuses_an_ambiguous_mapping_unless_allowed_and_check_exits_1_on_it(
    fresh_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert leads(capsys, "catalog", "apply", str(EXAMPLE))[0] == 0
    status, out, _ = leads(capsys, "catalog", "check")
    assert (status, out) == (0, "catalog check: no problems found\n")
    before = exported(capsys)

    clash = write(
        tmp_path,
        "clash.yaml",
        "sources: [{code: copycat, name: Copycat, offer: us-solar}]\n"
        "mappings: [{source: copycat, hostname: LEADS.example.com,"
        " path_prefix: /api/leads/acme/}]\n",
    )
    ambiguity = (
        "ambiguous mapping leads.example.com/api/leads/acme held by 2 active sources "
        "(acme-solar-us, copycat): leads posted there get 409 ambiguous_source_mapping"
    )
    for dry_run in ((), ("--dry-run",)):
        status, out, err = leads(capsys, "catalog", "apply", clash, *dry_run)
        assert (status, out) == (2, "")
        assert err == (
            f'leads: {clash}: mappings #1 "copycat": {ambiguity}; nothing was written: give each '
            "source its own hostname or path_prefix, or deactivate all but one "
            "(--allow-ambiguous applies it anyway)\n"
        )
    assert exported(capsys) == before

    status, out, err = leads(capsys, "catalog", "apply", clash, "--allow-ambiguous")
    assert status == 0
    assert out.splitlines()[-1] == "catalog applied: 2 created, 0 updated, 0 unchanged"
    assert err == f"leads: warning: {ambiguity}\n"
    status, out, _ = leads(capsys, "catalog", "check")
    assert status == 1
    assert out.splitlines()[0].startswith(
        "error: ambiguous mapping leads.example.com/api/leads/acme is held by 2 active sources: "
        "acme-solar-us (source_id 1), copycat (source_id 6)"
    )
    assert out.splitlines()[-1] == "catalog check: 1 error(s), 0 warning(s)"

    # Deactivating one of them resolves it; what remains are warnings, exit 0.
    fixed = write(
        tmp_path,
        "fixed.yaml",
        "offers: [{code: gb-solar, name: UK solar panel installs, market: gb, vertical: solar,"
        " active: false}]\n"
        "sources: [{code: copycat, name: Copycat, offer: us-solar, active: false}]\n",
    )
    assert leads(capsys, "catalog", "apply", fixed)[0] == 0
    status, out, _ = leads(capsys, "catalog", "check")
    assert status == 0
    assert out.splitlines() == [
        "warning: active mapping copycat leads.example.com/api/leads/acme points to inactive "
        "source copycat",
        "warning: active mapping sunform-gb leads.example.co.uk/api/leads/sunform points to "
        "source sunform-gb of inactive offer gb-solar",
        "warning: active source sunform-gb belongs to inactive offer gb-solar, so it takes no "
        "leads",
        "catalog check: 0 error(s), 3 warning(s)",
    ]


def test_docs_for_a_mapped_source_with_a_key(
    fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert leads(capsys, "catalog", "apply", str(EXAMPLE))[0] == 0
    status, out, _ = leads(capsys, "catalog", "docs", "acme-solar-us")
    assert status == 0
    assert "POST https://leads.example.com/api/leads/acme\n" in out
    assert "1. source_id: 1 " in out
    assert "2. source_key: acme-solar-us " in out
    assert "curl -sS -X POST https://leads.example.com/api/leads/acme \\" in out
    assert "Idempotent-Replayed: true" in out
    for code, status_code, _ in ERRORS:
        assert f"{code} " in out and f" {status_code} " in out
    for other, key in EXAMPLE_KEYS.items():
        if other != "acme-solar-us" and key:
            assert key not in out


def test_docs_for_a_source_without_key_or_mapping(
    fresh_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert leads(capsys, "catalog", "apply", str(EXAMPLE))[0] == 0
    keyless = write(
        tmp_path,
        "keyless.yaml",
        "sources: [{code: plain, name: Plain, offer: gb-solar, active: false}]\n",
    )
    assert leads(capsys, "catalog", "apply", keyless)[0] == 0
    status, out, _ = leads(
        capsys, "catalog", "docs", "plain", "--base-url", "https://api.example.net/"
    )
    assert status == 0
    assert "WARNING: this source is inactive" in out
    assert "POST https://api.example.net/api/leads with source_id in the body" in out
    assert "2. source_key: this source has none" in out
    assert "this source has no HTTP mapping" in out
    assert '"source_id": 6' in out and '"phone": "+44 ' in out
    for key in EXAMPLE_KEYS.values():
        if key:
            assert key not in out


def test_docs_of_an_unknown_source_exits_2(
    fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = leads(capsys, "catalog", "docs", "nobody")
    assert (status, out) == (2, "")
    assert err == 'leads: source "nobody": no source has this code\n'


def test_an_unmigrated_database_says_how_to_fix_it(
    new_database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", new_database())
    status, _, err = leads(capsys, "catalog", "check")
    assert status == 2
    assert "run `leads db upgrade`" in err


def test_an_unreachable_database_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/leads")
    monkeypatch.setenv("LEADS_DB_TIMEOUT_S", "2")
    status, _, err = leads(capsys, "catalog", "export")
    assert status == 2
    assert err == (
        "leads: no PostgreSQL answers at postgresql://postgres@127.0.0.1:1/leads: start "
        "PostgreSQL (e.g. `docker compose up -d postgres`) or set DATABASE_URL\n"
    )


def test_serve_loads_the_example_catalog_into_an_empty_catalog_only(
    fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert asyncio.run(load_example_catalog(fresh_database)) is True
    assert "loaded the example catalog" in capsys.readouterr().out
    assert {s["code"] for s in exported(capsys)["sources"]} == set(EXAMPLE_KEYS)
    assert asyncio.run(load_example_catalog(fresh_database)) is False


def test_serve_leaves_a_configured_catalog_alone(
    fresh_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    own = write(tmp_path, "own.yaml", "markets: [{code: fr, name: France, phone_region: FR}]\n")
    assert leads(capsys, "catalog", "apply", own)[0] == 0
    assert asyncio.run(load_example_catalog(fresh_database)) is False
    assert [m["code"] for m in exported(capsys)["markets"]] == ["fr"]


def test_the_docs_field_table_is_the_contract() -> None:
    assert tuple(name for name, _, _ in FIELDS) == KNOWN_FIELDS


def test_apply_reads_standard_input(
    fresh_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("markets: [{code: fr, name: France}]\n"))
    assert leads(capsys, "catalog", "apply", "-")[1].endswith("1 created, 0 updated, 0 unchanged\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("markets: [{code: fr, name: 7}]\n"))
    status, _, err = leads(capsys, "catalog", "apply", "-")
    assert (status, err) == (
        2,
        'leads: <stdin>: markets #1 "fr": name: must be a string '
        "(got the int 7: in YAML, quote the value)\n",
    )


def test_files_and_pipes_are_utf8_whatever_the_code_page(
    fresh_database: str, tmp_path: Path
) -> None:
    """Windows gives redirected output and piped input its code page (cp1252) by default."""
    env = {**os.environ, "DATABASE_URL": fresh_database, "PYTHONIOENCODING": "cp1252"}

    def catalog(*argv: str, stdin: Any = None, stdout: Any = subprocess.PIPE) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "cli", "catalog", *argv],
            cwd=EXAMPLE.parents[1],
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )

    # ü and ë are in cp1252, Ł and → are not; UTF-8's bytes for Á (c3 81) are not cp1252 text.
    names = {"de": "Bücher", "łódź": "Łódź → Zoë", "hu": "Á"}
    source = tmp_path / "catalog.yaml"
    source.write_text(
        "markets:\n" + "".join(f"  - {{code: {c}, name: {n}}}\n" for c, n in names.items()),
        encoding="utf-8",
    )
    with source.open("rb") as stdin:
        applied = catalog("apply", "-", stdin=stdin)
    assert (applied.returncode, applied.stderr) == (0, b"")
    assert "created market łódź\n" in applied.stdout.decode("utf-8")

    exported_file = tmp_path / "exported.yaml"
    with exported_file.open("wb") as stdout:
        export = catalog("export", stdout=stdout)
    assert (export.returncode, export.stderr) == (0, b"")
    markets = yaml.safe_load(exported_file.read_text(encoding="utf-8"))["markets"]
    assert {m["code"]: m["name"] for m in markets} == names

    with exported_file.open("rb") as stdin:
        again = catalog("apply", "-", stdin=stdin)
    assert (again.returncode, again.stderr) == (0, b"")
    assert again.stdout == b"catalog applied: 0 created, 0 updated, 3 unchanged\n"
