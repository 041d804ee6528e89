"""Consent evidence stored in its columns (JSON, forms, `leads import`), and `leads erase`:
by email, by phone, by source, by age, dry runs, the audit row, the trigger, replays of erased
leads and posts racing an erasure."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.consent import CONSENT_COLUMNS
from domain.fields import POSTED_FIELDS
from infrastructure import migrate
from infrastructure.erasure_store import ERASED_COLUMNS
from infrastructure.settings import to_asyncpg_url
from tests.support import ROOT, Catalog, CatalogSource, leads, posix_only, write

ERASURE_KEY = "k" * 40
CERT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "A1B2C3D4-E5F6-7890-ABCD-EF1234567890"
CONSENT = {
    "xxTrustedFormCertUrl": f"https://cert.trustedform.com/{CERT}",
    "xxTrustedFormPingUrl": "https://ping.trustedform.com/0.abc",
    "universal_leadid": TOKEN.lower(),
    "Disclaimer": "By clicking I agree to be called.",
    "consent_at": "2026-11-30T12:05:00-05:00",
    "page_url": "https://example.com/quote?utm=x",
}
STORED_CONSENT = {
    "trustedform_cert_url": f"https://cert.trustedform.com/{CERT}",
    "trustedform_cert_id": CERT,
    "trustedform_ping_url": "https://ping.trustedform.com/0.abc",
    "jornaya_leadid": TOKEN.lower(),
    "normalized_jornaya_leadid": TOKEN,
    "tcpa_consent_text": "By clicking I agree to be called.",
    "consent_at": datetime(2026, 11, 30, 17, 5, tzinfo=UTC),
    "page_url": "https://example.com/quote?utm=x",
}


@pytest.fixture
def erasing(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """`leads` in this process, on the test database, with an erasure key."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEADS_ERASURE_KEY", ERASURE_KEY)


async def row(engine: AsyncEngine, lead_id: object) -> dict[str, Any]:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT * FROM leads WHERE lead_id = :id"), {"id": lead_id}
        )
        return dict(found.mappings().one())


async def sql(engine: AsyncEngine, statement: str, **params: object) -> Any:
    async with engine.begin() as connection:
        result = await connection.execute(text(statement), params)
        return result.all() if result.returns_rows else None


async def post(
    client: httpx.AsyncClient, source: CatalogSource, **fields: object
) -> httpx.Response:
    return await client.post("/api/leads", json={"source_id": source.source_id, **fields})


def person() -> tuple[str, str]:
    """A unique email, and a unique US phone number."""
    tag = uuid.uuid4().int
    return f"Person.{tag % 10**12}@Example.com", f"(415) 5{tag % 10**6:06d}"


async def erase(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(leads, capsys, "erase", *argv)


# --- consent evidence ---------------------------------------------------------------------------


async def test_consent_evidence_posted_as_json_is_stored_in_its_columns(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    answer = await post(client, source, email="c@example.com", utm_source="x", **CONSENT)
    assert answer.status_code == 201, answer.text
    stored = await row(engine, answer.json()["lead_id"])
    assert {name: stored[name] for name in STORED_CONSENT} == STORED_CONSENT
    assert stored["attributes"] == {"utm_source": "x"}
    assert stored["erased_at"] is None


NAMES = [
    (name, field.name)
    for field in POSTED_FIELDS
    if field.role == "consent"
    for name in (field.name, *field.also, field.name.upper())
]


@pytest.mark.parametrize(("name", "column"), NAMES)
async def test_every_name_of_a_consent_field_reaches_its_column(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine, name: str, column: str
) -> None:
    source = await catalog.source()
    value = STORED_CONSENT[column]
    posted = CONSENT["consent_at"] if column == "consent_at" else value
    answer = await post(client, source, email="n@example.com", **{name: posted})
    assert answer.status_code == 201, answer.text
    stored = await row(engine, answer.json()["lead_id"])
    assert stored[column] == value and stored["attributes"] == {}


async def test_a_form_post_and_an_import_store_the_same_evidence(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    source = await catalog.source()
    form = await client.post(
        "/api/leads", data={"source_id": str(source.source_id), "email": "f@example.com", **CONSENT}
    )
    assert form.status_code == 201, form.text
    stored = await row(engine, form.json()["lead_id"])
    assert {name: stored[name] for name in STORED_CONSENT} == STORED_CONSENT
    columns = ["source_id", "email", *CONSENT]
    line = [str(source.source_id), "i@example.com", *(f'"{v}"' for v in CONSENT.values())]
    path = write(tmp_path, "consent.csv", ",".join(columns) + "\n" + ",".join(line) + "\n")
    status, out, err = await asyncio.to_thread(leads, capsys, "import", path)
    assert status == 0, (out, err)
    (imported,) = await sql(
        engine,
        "SELECT lead_id FROM leads WHERE source_id = :s AND email = 'i@example.com'",
        s=source.source_id,
    )
    stored = await row(engine, imported.lead_id)
    assert {name: stored[name] for name in STORED_CONSENT} == STORED_CONSENT


async def test_an_unreadable_consent_at_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, catalog: Catalog, engine: AsyncEngine
) -> None:
    source = await catalog.source()
    answer = await post(client, source, email="t@example.com", consent_at="2026-11-30 noon")
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {
        "reason": "invalid_timestamp",
        "field": "consent_at",
    }
    assert await sql(engine, "SELECT 1 FROM leads WHERE source_id = :s", s=source.source_id) == []


async def _schema(url: str) -> tuple[set[str], bool]:
    """The columns of `leads`, and whether `lead_erasures` exists."""
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            columns = await connection.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'leads'"
                )
            )
            audit = await connection.execute(text("SELECT to_regclass('lead_erasures')"))
            return {r[0] for r in columns}, audit.scalar_one() is not None
    finally:
        await engine.dispose()


def test_downgrade_drops_the_consent_columns_and_the_audit_table_and_upgrade_restores_them(
    new_database,  # type: ignore[no-untyped-def]
) -> None:
    url = new_database()
    asyncio.run(migrate.upgrade(url))
    new = {*CONSENT_COLUMNS, "erased_at"}
    columns, audit = asyncio.run(_schema(url))
    assert new <= columns and audit
    asyncio.run(migrate.downgrade(url, "0003"))
    columns, audit = asyncio.run(_schema(url))
    assert not new & columns and not audit
    asyncio.run(migrate.upgrade(url))
    columns, audit = asyncio.run(_schema(url))
    assert new <= columns and audit


# --- erasure ------------------------------------------------------------------------------------


async def test_erasing_by_email_empties_every_lead_of_that_person_in_any_formatting(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email, phone = person()
    first, second = await catalog.source(), await catalog.source()
    derived = await post(client, first, email=email, phone=phone, first_name="Jane", **CONSENT)
    keyed = await client.post(
        "/api/leads",
        json={"source_id": second.source_id, "email": f"  {email.upper()} ", "city": "Oakland"},
        headers={"Idempotency-Key": "order-1", "User-Agent": "publisher/1.0"},
    )
    other = await post(client, first, email="someone.else@example.com", **CONSENT)
    assert {derived.status_code, keyed.status_code, other.status_code} == {201}

    status, out, err = await erase(capsys, "--email", email.lower(), "--dry-run")
    assert (status, out, err) == (0, "would erase 2 leads\n", "")
    assert (await row(engine, derived.json()["lead_id"]))["erased_at"] is None

    status, out, err = await erase(capsys, "--email", f" {email.swapcase()} ")
    assert status == 0 and err == "" and out.startswith("erased 2 leads (lead_erasures row ")

    for answer, origin in ((derived, "derived"), (keyed, "client")):
        lead = answer.json()
        stored = await row(engine, lead["lead_id"])
        assert stored["erased_at"] is not None
        assert all(stored[column] is None for column in ERASED_COLUMNS), stored
        assert stored["attributes"] == {}
        kept = ("lead_id", "source_id", "offer_id", "market_id", "vertical_id", "status")
        assert {name: str(stored[name]) for name in kept} == {
            name: str(lead[name]) for name in kept
        }
        assert stored["idempotency_key_origin"] == origin
        expected_key = f"erased:{lead['lead_id']}" if origin == "derived" else "order-1"
        assert stored["idempotency_key"] == expected_key
    assert (await row(engine, derived.json()["lead_id"]))["consent_at"] == STORED_CONSENT[
        "consent_at"
    ]
    untouched = await row(engine, other.json()["lead_id"])
    assert untouched["erased_at"] is None and untouched["email"] == "someone.else@example.com"

    # Nothing left to erase: exit 1.
    status, out, _ = await erase(capsys, "--email", email)
    assert status == 1 and out.startswith("erased 0 leads ")


async def test_erasing_by_phone_matches_any_formatting_of_the_number(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, phone = person()
    source = await catalog.source()
    answer = await post(client, source, phone=phone)
    assert answer.status_code == 201
    digits = "".join(c for c in phone if c.isdigit())
    assert (await erase(capsys, "--phone", f"+1 {digits[:3]}-{digits[3:]}", "--dry-run"))[:2] == (
        0,
        "would erase 1 lead\n",
    )
    status, out, _ = await erase(capsys, "--phone", digits, "--region", "us")
    assert status == 0 and out.startswith("erased 1 lead ")
    assert (await row(engine, answer.json()["lead_id"]))["phone"] is None


async def test_erasing_within_one_source_leaves_the_others(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email, _ = person()
    first, second = await catalog.source(), await catalog.source()
    in_first, in_second = (
        await post(client, first, email=email),
        await post(client, second, email=email),
    )
    status, out, _ = await erase(capsys, "--email", email, "--source", first.code)
    assert status == 0 and out.startswith("erased 1 lead ")
    assert (await row(engine, in_first.json()["lead_id"]))["erased_at"] is not None
    assert (await row(engine, in_second.json()["lead_id"]))["email"] == email
    assert await erase(capsys, "--email", email, "--source", "no-such-source") == (
        2,
        "",
        "leads: no source has the code 'no-such-source'\n",
    )


async def test_retention_erases_leads_received_before_the_cut_off(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await catalog.source()
    posted = [await post(client, source, email=person()[0]) for _ in range(5)]
    old = [p.json()["lead_id"] for p in posted[:3]]
    await sql(
        engine,
        "UPDATE leads SET created_at = now() - interval '100 days' WHERE lead_id = ANY(:ids)",
        ids=[uuid.UUID(i) for i in old],
    )
    status, out, _ = await erase(
        capsys, "--older-than", "90d", "--source", source.code, "--batch-size", "2", "--pause", "0"
    )
    assert status == 0 and out.startswith("erased 3 leads ")
    erased = {
        str(r.lead_id)
        for r in await sql(
            engine,
            "SELECT lead_id FROM leads WHERE source_id = :s AND erased_at IS NOT NULL",
            s=source.source_id,
        )
    }
    assert erased == set(old)
    (audit,) = await sql(
        engine,
        "SELECT criterion, criterion_hash, received_before IS NOT NULL AS cut, leads_erased, "
        "finished_at IS NOT NULL AS finished FROM lead_erasures WHERE source_id = :s",
        s=source.source_id,
    )
    assert tuple(audit) == ("received_before", None, True, 3, True)


async def test_the_audit_row_holds_a_keyed_hash_and_no_table_holds_the_erased_data(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email, phone = person()
    cert, token = uuid.uuid4().hex + "0" * 8, str(uuid.uuid4()).upper()
    evidence = {
        **CONSENT,
        "xxTrustedFormCertUrl": f"https://cert.trustedform.com/{cert}",
        "universal_leadid": token,
    }
    source = await catalog.source()
    answer = await post(client, source, email=email, phone=phone, **evidence)
    assert answer.status_code == 201
    assert (await row(engine, answer.json()["lead_id"]))["trustedform_cert_id"] == cert
    status, out, _ = await erase(capsys, "--email", email)
    assert status == 0
    erasure_id = int(out.split("row ")[1].rstrip(")\n"))
    (audit,) = await sql(
        engine, "SELECT * FROM lead_erasures WHERE erasure_id = :id", id=erasure_id
    )
    expected = hmac.new(
        ERASURE_KEY.encode(), f"email:{email.lower()}".encode(), hashlib.sha256
    ).hexdigest()
    assert (audit.criterion, audit.criterion_hash, audit.leads_erased) == ("email", expected, 1)
    # Every row of every table of the database, as text: the address and number are gone.
    tables = await sql(
        engine,
        "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    digits = "".join(c for c in phone if c.isdigit())
    for (table,) in tables:
        for (content,) in await sql(engine, f"SELECT t::text FROM {table} t"):
            assert email.lower() not in content.lower(), table
            assert digits not in "".join(c for c in content if c.isdigit()), table
            assert cert not in content and token not in content.upper(), table


async def test_erasing_by_email_or_phone_needs_the_erasure_key(
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LEADS_ERASURE_KEY")
    before = await sql(engine, "SELECT count(*) FROM lead_erasures")
    status, out, err = await erase(capsys, "--email", "nobody@example.com")
    assert (status, out) == (2, "")
    assert err.startswith("leads: LEADS_ERASURE_KEY is not set: ") and err.count("\n") == 1
    assert await sql(engine, "SELECT count(*) FROM lead_erasures") == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--email", "not-an-address"], "leads: 'not-an-address' is not an email address\n"),
        (["--phone", "12"], "leads: '12' is not a phone number (7 digits or more)\n"),
    ],
)
async def test_a_criterion_that_matches_nobody_by_construction_is_a_usage_error(
    erasing: None, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert await erase(capsys, *argv) == (2, "", message)


def test_one_criterion_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        leads(capsys, "erase", "--email", "a@example.com", "--older-than", "90d")
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        leads(capsys, "erase", "--older-than", "ninety days")
    assert "is not an age such as 90d or 12h" in capsys.readouterr().err


async def test_the_trigger_allows_erasure_once_and_nothing_else(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email, _ = person()
    source = await catalog.source()
    lead_id = (await post(client, source, email=email, **CONSENT)).json()["lead_id"]
    refused = [
        "UPDATE leads SET tcpa_consent_text = 'changed' WHERE lead_id = :id",
        "UPDATE leads SET consent_at = now() WHERE lead_id = :id",
        # An erasure that leaves data behind, or changes what it must keep.
        "UPDATE leads SET erased_at = now() WHERE lead_id = :id",
        "UPDATE leads SET erased_at = now(), email = NULL, normalized_email = NULL, "
        "attributes = '{}', idempotency_key = 'erased:' || lead_id, page_url = NULL, "
        "trustedform_cert_url = NULL, trustedform_cert_id = NULL, trustedform_ping_url = NULL, "
        "jornaya_leadid = NULL, normalized_jornaya_leadid = NULL, tcpa_consent_text = NULL, "
        "client_ip = NULL, user_agent = NULL, offer_id = offer_id + 1 WHERE lead_id = :id",
    ]
    for statement in refused:
        with pytest.raises(DBAPIError, match=r"cannot change|erasure empties"):
            await sql(engine, statement, id=uuid.UUID(lead_id))
    assert (await erase(capsys, "--email", email))[0] == 0
    for statement in (
        "UPDATE leads SET email = 'back@example.com' WHERE lead_id = :id",
        "UPDATE leads SET erased_at = NULL WHERE lead_id = :id",
        "UPDATE leads SET erased_at = now() WHERE lead_id = :id",
    ):
        with pytest.raises(DBAPIError, match="cannot change"):
            await sql(engine, statement, id=uuid.UUID(lead_id))
    # What later stages own still changes.
    await sql(
        engine, "UPDATE leads SET status = 'routed' WHERE lead_id = :id", id=uuid.UUID(lead_id)
    )


async def test_an_old_request_replayed_after_erasure_gets_the_erased_lead_and_stores_nothing(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email, phone = person()
    source = await catalog.source()
    fields: Mapping[str, object] = {"email": email, "phone": phone, **CONSENT}
    created = await post(client, source, **fields)
    keyed = await client.post(
        "/api/leads",
        json={"source_id": source.source_id, "email": email},
        headers={"Idempotency-Key": "k-1"},
    )
    assert (await erase(capsys, "--email", email))[:1] == (0,)
    for original, replay in (
        (created, await post(client, source, **fields)),
        (
            keyed,
            await client.post(
                "/api/leads",
                json={"source_id": source.source_id, "email": email},
                headers={"Idempotency-Key": "k-1"},
            ),
        ),
    ):
        assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["lead_id"] == original.json()["lead_id"]
        assert replay.json()["replayed"] is True
    assert created.json()["idempotency_key"].startswith("d1:")
    assert (await post(client, source, **fields)).json()["idempotency_key"] == (
        f"erased:{created.json()['lead_id']}"
    )
    rows = await sql(
        engine, "SELECT email, erased_at FROM leads WHERE source_id = :s", s=source.source_id
    )
    assert len(rows) == 2 and all(r.email is None and r.erased_at is not None for r in rows)


async def test_posts_racing_an_erasure_create_exactly_one_lead_each(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    erased_email, _ = person()
    racing_email, _ = person()
    source = await catalog.source()
    for index in range(60):  # one person's leads, erased one per transaction below
        answer = await post(client, source, email=erased_email, note=str(index))
        assert answer.status_code == 201
    erasure = asyncio.create_task(
        erase(capsys, "--email", erased_email, "--batch-size", "1", "--pause", "0")
    )
    answers = await asyncio.gather(
        *(post(client, source, email=racing_email, note="same") for _ in range(20))
    )
    status, out, _ = await erasure
    assert status == 0 and out.startswith("erased 60 leads ")
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert len({a.json()["lead_id"] for a in answers}) == 1
    counts = await sql(
        engine,
        "SELECT email IS NULL AS erased, count(*) FROM leads WHERE source_id = :s GROUP BY 1",
        s=source.source_id,
    )
    assert sorted(map(tuple, counts)) == [(False, 1), (True, 60)]


@posix_only  # SIGINT to a child process
async def test_an_interrupted_retention_run_keeps_what_it_erased_and_a_rerun_erases_the_rest(
    client: httpx.AsyncClient,
    catalog: Catalog,
    engine: AsyncEngine,
    database_url: str,
    erasing: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import signal

    source = await catalog.source()
    for _ in range(6):
        assert (await post(client, source, email=person()[0])).status_code == 201
    await sql(
        engine,
        "UPDATE leads SET created_at = now() - interval '100 days' WHERE source_id = :s",
        s=source.source_id,
    )

    async def erased() -> int:
        ((count,),) = await sql(
            engine,
            "SELECT count(*) FROM leads WHERE source_id = :s AND erased_at IS NOT NULL",
            s=source.source_id,
        )
        return int(count)

    argv = ["erase", "--older-than", "90d", "--source", source.code, "--batch-size", "1"]
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cli", *argv, "--pause", "30"),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LEADS_ERASURE_KEY": ERASURE_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):  # the first batch, then the pause
            if await erased():
                break
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGINT)
        output, errors = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, errors
    assert output == b""
    assert errors.decode().startswith("leads: interrupted: the leads erased so far stay erased")
    assert await erased() == 1
    (audit,) = await sql(
        engine,
        "SELECT leads_erased, finished_at FROM lead_erasures WHERE source_id = :s",
        s=source.source_id,
    )
    assert tuple(audit) == (1, None)  # counted, not finished
    status, out, _ = await erase(capsys, *argv[1:], "--pause", "0")
    assert status == 0 and out.startswith("erased 5 leads ")
    assert await erased() == 6
