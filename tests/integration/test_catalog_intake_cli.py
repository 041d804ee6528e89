"""`leads catalog apply|export|check|docs` with a source's key requirement, networks, aliases,
key reuse and reply format.

Each test points DATABASE_URL at a database of its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure.settings import to_asyncpg_url
from tests.support import leads, write

KEY = "acme-0123456789abcdef"

CATALOG = f"""
markets: [{{code: us, name: United States, phone_region: US}}]
verticals: [{{code: solar, name: Solar}}]
offers: [{{code: us-solar, name: US solar, market: us, vertical: solar}}]
sources:
  - code: acme
    name: Acme
    offer: us-solar
    source_key: {KEY.upper()}
    require_key: true
    allowed_networks: [203.0.113.0/24, "2001:DB8::/32"]
    field_aliases: {{FName: first_name, zip: Postal_Code}}
  - {{code: plain, name: Plain, offer: us-solar}}
mappings:
  - {{source: acme, hostname: leads.example.com, path_prefix: /api/leads/acme}}
"""


async def _stored_sources(url: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT code, source_key, require_key, allowed_networks::text[], "
                    "field_aliases FROM sources ORDER BY code"
                )
            )
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


def test_apply_stores_export_round_trips_check_warns_docs_state_them(
    fresh_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "catalog.yaml", CATALOG)
    status, out, err = leads(capsys, "catalog", "apply", path)
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == "catalog applied: 6 created, 0 updated, 0 unchanged"
    assert asyncio.run(_stored_sources(fresh_database)) == [
        (
            "acme",
            KEY,
            True,
            ["203.0.113.0/24", "2001:db8::/32"],
            {"fname": "first_name", "zip": "postal_code"},
        ),
        ("plain", None, False, [], {}),
    ]

    status, out, _ = leads(capsys, "catalog", "export")
    assert status == 0
    document = yaml.safe_load(out)
    assert document["sources"] == [
        {
            "code": "acme",
            "name": "Acme",
            "offer": "us-solar",
            "source_key": KEY,
            "active": True,
            "require_key": True,
            "allowed_networks": ["203.0.113.0/24", "2001:db8::/32"],
            "field_aliases": {"fname": "first_name", "zip": "postal_code"},
        },
        {"code": "plain", "name": "Plain", "offer": "us-solar", "source_key": None, "active": True},
    ]
    exported = write(tmp_path, "exported.yaml", out)
    assert leads(capsys, "catalog", "apply", exported)[1] == (
        "catalog applied: 0 created, 0 updated, 6 unchanged\n"
    )

    status, out, _ = leads(capsys, "catalog", "check")
    assert status == 0
    assert out.splitlines() == [
        "warning: source acme requires its key and is mapped to leads.example.com/api/leads/acme:"
        " posts there are refused unless they also send source_key in the body or query string",
        "catalog check: 0 error(s), 1 warning(s)",
    ]

    status, out, _ = leads(capsys, "catalog", "docs", "acme")
    assert status == 0
    assert "source_key: required in every post" in out
    assert "accepted only from 203.0.113.0/24, 2001:db8::/32" in out
    assert "  fname     first_name\n  zip       postal_code\n" in out


def test_updates_report_the_intake_fields_and_omitting_them_keeps_them(
    fresh_database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert leads(capsys, "catalog", "apply", write(tmp_path, "c.yaml", CATALOG))[0] == 0
    kept = write(tmp_path, "kept.yaml", "sources: [{code: acme, name: Acme, offer: us-solar}]\n")
    assert leads(capsys, "catalog", "apply", kept)[1] == (
        "catalog applied: 0 created, 0 updated, 1 unchanged\n"
    )
    opened = write(
        tmp_path,
        "opened.yaml",
        "sources: [{code: acme, name: Acme, offer: us-solar, require_key: false,"
        " allowed_networks: null, field_aliases: {}}]\n",
    )
    status, out, _ = leads(capsys, "catalog", "apply", opened, "--dry-run")
    assert status == 0
    assert out.splitlines()[0] == (
        "would update source acme (require_key, allowed_networks, field_aliases)"
    )
    assert leads(capsys, "catalog", "apply", opened)[0] == 0
    assert asyncio.run(_stored_sources(fresh_database))[0] == ("acme", KEY, False, [], {})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{code: s, name: S, offer: o, require_key: true}",
            'sources #1 "s": require_key: needs a source_key of at least 16 characters',
        ),
        (
            "{code: s, name: S, offer: o, source_key: secret-short, require_key: true}",
            'sources #1 "s": require_key: needs a source_key of at least 16 characters',
        ),
        (
            "{code: s, name: S, offer: o, allowed_networks: [10.1.2.3/8]}",
            'sources #1 "s": allowed_networks: "10.1.2.3/8" has bits set',
        ),
        (
            "{code: s, name: S, offer: o, field_aliases: {email_address: Email, Email: phone}}",
            'sources #1 "s": field_aliases: "Email" is already a field name',
        ),
        (
            "{code: s, name: S, offer: o, field_aliases: {sid: source_id}}",
            'sources #1 "s": field_aliases: "sid": source_id cannot be a target',
        ),
    ],
)
def test_apply_refuses_unusable_intake_fields_with_exit_2_and_writes_nothing(
    fresh_database: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    source: str,
    message: str,
) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        "markets: [{code: m, name: M}]\nverticals: [{code: v, name: V}]\n"
        "offers: [{code: o, name: O, market: m, vertical: v}]\n"
        f"sources: [{source}]\n",
    )
    status, out, err = leads(capsys, "catalog", "apply", path)
    assert (status, out) == (2, "")
    assert err.startswith(f"leads: {path}: {message}")
    assert err.count("\n") == 1
    assert "secret-short" not in err
    assert asyncio.run(_stored_sources(fresh_database)) == []


POLICIES = """
markets: [{code: us, name: United States, phone_region: US}]
verticals: [{code: solar, name: Solar}]
offers: [{code: us-solar, name: US solar, market: us, vertical: solar}]
sources:
  - {code: strict, name: Strict, offer: us-solar, source_key: strict-key, OPTION: VALUE}
  - {code: plain, name: Plain, offer: us-solar, source_key: plain-key}
"""


@pytest.mark.parametrize(
    ("option", "value", "choices", "documented"),
    [
        ("key_reuse", "reject", "replay, reject", "422 idempotency_key_reused"),
        ("reply_format", "xml", "json, xml, text", "-H 'Content-Type: application/xml'"),
    ],
)
def test_a_sources_policy_applies_exports_keeps_and_is_documented(
    fresh_database: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    option: str,
    value: str,
    choices: str,
    documented: str,
) -> None:
    catalog = POLICIES.replace("OPTION: VALUE", f"{option}: {value}")
    assert leads(capsys, "catalog", "apply", write(tmp_path, "c.yaml", catalog))[0] == 0
    status, out, _ = leads(capsys, "catalog", "export")
    sources = {s["code"]: s for s in yaml.safe_load(out)["sources"]}
    assert status == 0 and sources["strict"][option] == value
    assert option not in sources["plain"]  # the default is not written out
    # Omitted on update: kept, like every optional field of a source.
    kept = write(tmp_path, "kept.yaml", "sources: [{code: strict, name: Strict, offer: us-solar}]")
    assert leads(capsys, "catalog", "apply", kept)[1].endswith("0 updated, 1 unchanged\n")
    assert leads(capsys, "catalog", "check")[0] == 0
    status, out, _ = leads(capsys, "catalog", "docs", "strict")
    assert status == 0 and documented in out
    bad = write(tmp_path, "bad.yaml", POLICIES.replace("OPTION: VALUE", f"{option}: never"))
    status, out, err = leads(capsys, "catalog", "apply", bad)
    assert (status, out) == (2, "")
    assert err == f'leads: {bad}: sources #1 "strict": {option}: must be one of {choices}\n'
