"""What a database failure is, in an operator's words, for the API, `leads` and its import:
a misconfiguration (a `DatabaseProblem`: a stable `reason` code and one line naming the cause,
the URL tried, password hidden, and the fix; a 503 from the API, exit 2 from `leads`), a passing
failure (a 503 to retry) or a bug."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import exc as sa_exc

from domain.errors import ServiceUnavailable
from infrastructure.provisioning import asyncpg_dsn

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
_UPGRADE = "run `leads db upgrade`"
_CAUSE_AND_FIX = {
    AUTHENTICATION_FAILED: (
        "PostgreSQL refused the user name or password",
        "set DATABASE_URL to a user and password that server accepts, or stop that server",
    ),
    DATABASE_MISSING: (
        "the database does not exist",
        "create it, or set DATABASE_URL to an existing database",
    ),
    SCHEMA_NOT_MIGRATED: ("the database schema is not migrated", _UPGRADE),
    SCHEMA_OUT_OF_DATE: (
        "the database schema is older than this version of the service",
        _UPGRADE,
    ),
    UNREACHABLE: (
        "no PostgreSQL answers",
        "start PostgreSQL (e.g. `docker compose up -d postgres`) or set DATABASE_URL",
    ),
}
# SQLSTATE classes (and one code) that mean "the database cannot do this right now": the
# client may retry safely because nothing was committed.
_UNAVAILABLE_SQLSTATES = (
    "08",  # connection exception
    "40",  # transaction rollback: serialization failure, deadlock — the server says retry
    "53",  # insufficient resources: disk full, out of memory, too many connections
    "57",  # operator intervention: shutdown, cancel (statement timeout), cannot connect now
    # A read-only server (standby, failover in progress, default_transaction_read_only)
    # refuses the write before it happens.
    "25006",  # read_only_sql_transaction
)


@dataclass(frozen=True, slots=True)
class DatabaseProblem:
    """A misconfiguration of the database: `reason` is a stable code, `line()` the message."""

    reason: str

    @property
    def cause(self) -> str:
        return _CAUSE_AND_FIX[self.reason][0]

    @property
    def fix(self) -> str:
        return _CAUSE_AND_FIX[self.reason][1]

    def line(self, url: str) -> str:
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


def is_unavailable(error: BaseException) -> bool:
    """True when `error` says the database is unreachable, overloaded or too slow."""
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        orig = error.orig
        error = getattr(orig, "__cause__", None) or orig or error
    # Server errors say so by their SQLSTATE; these are the client's. A protocol-state error
    # (InternalClientError) on a connection used by one task at a time means the server's
    # error or close arrived while it sat idle in the pool: it is dying.
    client_errors = (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)
    if isinstance(error, (*client_errors, sa_exc.TimeoutError)):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def as_unavailable(error: BaseException) -> ServiceUnavailable | None:
    """The 503 that `error` amounts to, or None when it is a bug (a 500).

    A 503 is either passing (`is_unavailable`) or a misconfiguration (`diagnose`); either way
    nothing was committed and the client may retry. Its `__cause__` is `error`, where the web
    layer and the command line read what went wrong.
    """
    if isinstance(error, ServiceUnavailable):
        return error
    if not (is_unavailable(error) or diagnose(error) is not None):
        return None
    unavailable = ServiceUnavailable()
    unavailable.__cause__ = error
    return unavailable


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


async def connection_error(url: str, timeout_s: float = 10.0) -> BaseException | None:
    """Why one connection to `url` fails, or None when it connects: the API's start-up and the
    test suite name a misconfigured database with it before the first request does."""
    try:
        connection = await asyncio.wait_for(
            asyncpg.connect(asyncpg_dsn(url), timeout=timeout_s), timeout_s + 1
        )
    except Exception as error:
        return error
    await connection.close()
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def diagnosed_line(error: BaseException, url: str) -> str | None:
    """The line of the misconfiguration found in `error` or what caused it, if any."""
    problem = next(filter(None, map(diagnose, _causes(error))), None)
    return None if problem is None else problem.line(url)


def database_problem_line(error: BaseException, url: str) -> str | None:
    """One line saying what is wrong with the database at `url` and how to fix it, for an
    error that comes from it; None otherwise (a bug, shown with its traceback)."""
    diagnosed = diagnosed_line(error, url)
    if diagnosed is not None:
        return diagnosed
    causes = list(_causes(error))
    if any(isinstance(cause, ServiceUnavailable) for cause in causes):
        reason = " ".join(str(causes[-1]).split()) or type(causes[-1]).__name__
        return f"the database at {redact_url(url)} is unavailable ({reason}); try again"
    return None
