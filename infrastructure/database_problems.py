"""What is wrong with the configured database, in an operator's words.

A connection or statement failure that the operator must fix (wrong password, missing
database, unmigrated schema, nothing listening) becomes a `DatabaseProblem`: a stable
`reason` code and one line naming the cause, the URL tried (password hidden) and the fix.
The API answers these with 503; the command line prints the line and exits 2.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import exc as sa_exc

AUTHENTICATION_FAILED = "authentication_failed"
DATABASE_MISSING = "database_missing"
SCHEMA_NOT_MIGRATED = "schema_not_migrated"
SCHEMA_OUT_OF_DATE = "schema_out_of_date"
UNREACHABLE = "unreachable"

# SQLSTATEs that name a misconfiguration rather than a passing failure.
_REASON_BY_SQLSTATE = {
    "28000": AUTHENTICATION_FAILED,  # invalid_authorization_specification: no such role, pg_hba
    "28P01": AUTHENTICATION_FAILED,  # invalid_password
    "3D000": DATABASE_MISSING,  # invalid_catalog_name
    "42P01": SCHEMA_NOT_MIGRATED,  # undefined_table
    "42703": SCHEMA_OUT_OF_DATE,  # undefined_column: migrated, but not to this version
}

_CAUSES = {
    AUTHENTICATION_FAILED: "PostgreSQL refused the user name or password",
    DATABASE_MISSING: "the database does not exist",
    SCHEMA_NOT_MIGRATED: "the database schema is not migrated",
    SCHEMA_OUT_OF_DATE: "the database schema is older than this version of the service",
    UNREACHABLE: "no PostgreSQL answers",
}
_FIXES = {
    AUTHENTICATION_FAILED: (
        "set DATABASE_URL to a user and password that server accepts, or stop that server"
    ),
    DATABASE_MISSING: "create it, or set DATABASE_URL to an existing database",
    SCHEMA_NOT_MIGRATED: "run `leads db upgrade`",
    SCHEMA_OUT_OF_DATE: "run `leads db upgrade`",
    UNREACHABLE: "start PostgreSQL (e.g. `docker compose up -d postgres`) or set DATABASE_URL",
}


@dataclass(frozen=True, slots=True)
class DatabaseProblem:
    """A misconfiguration of the database: `reason` is a stable code, `line()` the message."""

    reason: str

    @property
    def cause(self) -> str:
        return _CAUSES[self.reason]

    @property
    def fix(self) -> str:
        return _FIXES[self.reason]

    def line(self, url: str) -> str:
        """One line for an operator: cause, URL tried (password hidden), fix."""
        return f"{self.cause} at {redact_url(url)}: {self.fix}"


def root_cause(error: BaseException) -> BaseException:
    """The driver's own error under SQLAlchemy's wrappers."""
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        orig: BaseException = error.orig
        return orig.__cause__ or orig
    return error


def diagnose(error: BaseException) -> DatabaseProblem | None:
    """The misconfiguration `error` reveals, or None when it is not one."""
    cause = root_cause(error)
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _REASON_BY_SQLSTATE:
        return DatabaseProblem(_REASON_BY_SQLSTATE[sqlstate])
    if isinstance(cause, ConnectionRefusedError | asyncio.TimeoutError | TimeoutError) or (
        isinstance(cause, OSError) and not isinstance(cause, PermissionError)
    ):
        return DatabaseProblem(UNREACHABLE)
    return None


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (user, host, port and database kept)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<DATABASE_URL, unparsable>"
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
