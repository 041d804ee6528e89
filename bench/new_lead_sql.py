"""The SQL of one new lead as the ceilings (pgbench) and bench/db_layers run it, derived from the
service's own statements in infrastructure/repositories.py, and the parameters the service binds.

Two shapes: the service's transaction (BEGIN; SOURCE_BY_KEY; INSERT_LEAD; COMMIT) and the least
work that durably creates a lead, ONE autocommit statement that checks the source and inserts:
`INSERT INTO leads (…) SELECT … FROM sources s JOIN offers o … JOIN markets m …
WHERE s.source_id = :source_id AND s.is_active AND o.is_active ON CONFLICT DO NOTHING RETURNING …`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench import workload
from bench.console import BenchError
from domain.idempotency import lead_id_for
from domain.normalization import normalize_email, normalize_phone
from domain.submission import parse_submission
from handlers.ports import NewLead, SourceBinding
from infrastructure.repositories import (
    INSERT_LEAD,
    SOURCE_BY_ID,
    SOURCE_BY_KEY,
    insert_lead_params,
)
from infrastructure.sql import Statement

# pgbench variables cannot hold a fresh uuid (the service computes a uuid5), so the server makes it.
SERVER_LEAD_ID = "gen_random_uuid()"
# A unique key per pgbench transaction.
# The ceilings' names: their keys in the results; `ratio_key` names the service's ratio to each.
SERVICE_SHAPE, ONE_STATEMENT = "pgbench", "pgbench_one_statement"
CEILINGS = (SERVICE_SHAPE, ONE_STATEMENT)


def ratio_key(ceiling: str) -> str:
    """`ratio` (the historic service_rps / pgbench_tps) and `ratio_one_statement`."""
    return "ratio" + ceiling.removeprefix("pgbench")


PGBENCH_KEY = "\\set idempotency_key :client_id * 1000000000000000 + random(1, 999999999999999)"


def _parameter(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![:\w]):{name}\b")


def _insert_parts() -> tuple[str, str, str]:
    """INSERT_LEAD as (`INSERT INTO leads (…)`, the VALUES expressions, `ON CONFLICT …`)."""
    head, found, rest = INSERT_LEAD.text.partition(" VALUES (")
    values, found_tail, tail = rest.rpartition(") ON CONFLICT ")
    if not found or not found_tail:
        raise BenchError(
            "infrastructure/repositories.py: INSERT_LEAD is no longer `INSERT … VALUES (…) "
            "ON CONFLICT …`; update bench/new_lead_sql.py to derive the ceilings from it"
        )
    return head, values, "ON CONFLICT " + tail


def source_columns() -> dict[str, str]:
    """Each INSERT parameter the source lookup supplies → its joined column (`o.offer_id`…)."""
    select_list = SOURCE_BY_ID.text.removeprefix("SELECT ").split(" FROM ", 1)[0]
    columns = [column.strip() for column in select_list.split(",")]
    return {
        column.rpartition(".")[2]: column
        for column in columns
        if column.rpartition(".")[2] in INSERT_LEAD.names
    }


def one_statement() -> Statement:
    """The source check and the insert in one statement (no transaction block needed)."""
    head, values, tail = _insert_parts()
    for name, column in source_columns().items():
        values = _parameter(name).sub(column, values)
    source_from = SOURCE_BY_ID.text[SOURCE_BY_ID.text.index(" FROM ") :]
    return Statement(f"{head} SELECT {values}{source_from} {tail}")


def new_lead(idempotency_key: str, source: SourceBinding) -> NewLead:
    """The bench lead as the ingest handler builds it from the posted fields."""
    submission = parse_submission(workload.posted(idempotency_key))
    return NewLead(
        lead_id=lead_id_for(source.source_id, idempotency_key),
        source=source,
        idempotency_key=idempotency_key,
        idempotency_key_origin="client",
        is_test=submission.is_test,
        contact=submission.contact,
        normalized_email=normalize_email(submission.contact.get("email")),
        normalized_phone=normalize_phone(submission.contact.get("phone"), source.phone_region),
        attributes=submission.attributes,
        received_host=workload.RECEIVED_HOST,
        received_path=workload.RECEIVED_PATH,
    )


def lead_params(source: SourceBinding) -> dict[str, object]:
    """INSERT_LEAD's parameters for the bench lead; set `idempotency_key` and `lead_id` per lead."""
    return insert_lead_params(new_lead("bench", source))


@dataclass(frozen=True)
class PgbenchScript:
    """A pgbench script and its `-D name=value` variables."""

    name: str
    title: str
    script: str
    variables: dict[str, str]


def _pgbench_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _pgbench_sql(statement: str, constants: dict[str, object]) -> tuple[str, dict[str, str]]:
    """The statement with `:lead_id` made by the server and NULL constants inlined (a pgbench
    variable cannot be NULL), and the `-D` variables for the other constants."""
    sql = _parameter("lead_id").sub(SERVER_LEAD_ID, statement)
    variables: dict[str, str] = {}
    for name, value in constants.items():
        if value is None:
            sql = _parameter(name).sub("NULL", sql)
        else:
            variables[name] = _pgbench_value(value)
    return sql, variables


def pgbench_scripts(source: SourceBinding) -> list[PgbenchScript]:
    """The two ceilings: the service's transaction, and the one statement."""
    per_lead = {"lead_id", "idempotency_key", *source_columns()}
    constants = {k: v for k, v in lead_params(source).items() if k not in per_lead}
    insert, variables = _pgbench_sql(INSERT_LEAD.text, constants)
    single, single_variables = _pgbench_sql(one_statement().text, constants)
    return [
        PgbenchScript(
            name=SERVICE_SHAPE,
            title="the service's transaction",
            script="-- one new lead, the service's transaction shape (bench/new_lead_sql.py)\n"
            f"{PGBENCH_KEY}\nBEGIN;\n{SOURCE_BY_KEY.text} \\gset\n{insert};\nCOMMIT;\n",
            variables={"source_key": workload.SOURCE_KEY, **variables},
        ),
        PgbenchScript(
            name=ONE_STATEMENT,
            title="one statement",
            script="-- one new lead, one autocommit statement (bench/new_lead_sql.py)\n"
            f"{PGBENCH_KEY}\n{single};\n",
            variables={"source_id": str(source.source_id), **single_variables},
        ),
    ]
