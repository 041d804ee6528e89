"""The SQL of one new lead as the ceilings (pgbench) and bench/db_layers run it, derived from the
service's own statements in infrastructure/repositories.py, and the parameters the service binds.

Two shapes:

* ONE statement: the service's own write, `WRITE_LEAD` — `WITH current_source AS (the source
  still active and bound as read, the catalog still at the version read), inserted AS
  (INSERT INTO leads (…) SELECT … FROM current_source ON CONFLICT DO NOTHING RETURNING …)
  SELECT …` — in autocommit: the least work that durably creates a lead;
* FOUR statements: the transaction the service used before (`BEGIN; SOURCE_BY_KEY;
  INSERT … VALUES …; COMMIT`), with the same columns, kept as the reference that the earlier
  figures and the issue-6 ratio target were measured against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address

from bench import workload
from domain.idempotency import lead_id_for
from domain.normalization import normalize_email, normalize_phone
from domain.submission import parse_submission
from handlers.ports import NewLead, SourceBinding, Versioned
from infrastructure.repositories import (
    LEAD_COLUMNS,
    LEAD_VALUES,
    SOURCE_BY_KEY,
    WRITE_LEAD,
    insert_lead_params,
)
from infrastructure.sql import Statement
from queries.leads import LEAD_VIEW_COLUMNS

# The bench clients connect from 127.0.0.1 and send no User-Agent (http.client and wrk add
# none), so that is what the service stores with each of their leads.
CLIENT_IP = IPv4Address("127.0.0.1")
USER_AGENT: str | None = None
# pgbench variables cannot hold a fresh uuid (the service computes a uuid5), so the server makes it.
SERVER_LEAD_ID = "gen_random_uuid()"
# The ceilings' names: their keys in the results; `ratio_key` names the service's ratio to each.
# "pgbench" is the four-statement transaction's historic key.
FOUR_STATEMENTS, ONE_STATEMENT = "pgbench", "pgbench_one_statement"
CEILINGS = (FOUR_STATEMENTS, ONE_STATEMENT)
# The lead's columns that its source's lookup supplies.
BINDINGS = ("source_id", "offer_id", "market_id", "vertical_id")


def ratio_key(ceiling: str) -> str:
    """`ratio` (service_rps / the four-statement tps) and `ratio_one_statement`."""
    return "ratio" + ceiling.removeprefix("pgbench")


# A unique key per pgbench transaction.
PGBENCH_KEY = "\\set idempotency_key :client_id * 1000000000000000 + random(1, 999999999999999)"

# The four-statement transaction's INSERT: the service's columns, values bound one by one.
INSERT_VALUES = Statement(
    f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) VALUES ({LEAD_VALUES}) "
    f"ON CONFLICT DO NOTHING RETURNING {LEAD_VIEW_COLUMNS}"
)


def _parameter(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![:\w]):{name}\b")


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
        client_ip=CLIENT_IP,
        user_agent=USER_AGENT,
    )


def lead_params(source: Versioned[SourceBinding]) -> dict[str, object]:
    """WRITE_LEAD's parameters (a superset of INSERT_VALUES') for the bench lead; set
    `idempotency_key` and `lead_id` per lead."""
    return {
        **insert_lead_params(new_lead("bench", source.value)),
        "catalog_version": source.version,
    }


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
        elif _parameter(name).search(sql):
            variables[name] = _pgbench_value(value)
    return sql, variables


def pgbench_scripts(source: Versioned[SourceBinding]) -> list[PgbenchScript]:
    """The two ceilings: the one statement (the service's), and the four-statement transaction
    whose bindings come from the source lookup (`\\gset`)."""
    params = lead_params(source)
    constants = {k: v for k, v in params.items() if k not in ("lead_id", "idempotency_key")}
    single, single_variables = _pgbench_sql(WRITE_LEAD.text, constants)
    looked_up = {k: v for k, v in constants.items() if k not in BINDINGS}
    insert, variables = _pgbench_sql(INSERT_VALUES.text, looked_up)
    return [
        PgbenchScript(
            name=FOUR_STATEMENTS,
            title="four statements (the former transaction)",
            script="-- one new lead, BEGIN; SELECT; INSERT; COMMIT (bench/new_lead_sql.py)\n"
            f"{PGBENCH_KEY}\nBEGIN;\n{SOURCE_BY_KEY.text} \\gset\n{insert};\nCOMMIT;\n",
            variables={"source_key": workload.SOURCE_KEY, **variables},
        ),
        PgbenchScript(
            name=ONE_STATEMENT,
            title="one statement (the service's write)",
            script="-- one new lead, the service's autocommit statement (bench/new_lead_sql.py)\n"
            f"{PGBENCH_KEY}\n{single};\n",
            variables=single_variables,
        ),
    ]
