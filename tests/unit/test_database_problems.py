"""Misconfigurations of the database, told apart from passing failures and from bugs."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from domain.errors import ServiceUnavailable
from infrastructure.database_problems import (
    AUTHENTICATION_FAILED,
    DATABASE_MISSING,
    SCHEMA_NOT_MIGRATED,
    SCHEMA_OUT_OF_DATE,
    UNREACHABLE,
    DatabaseProblem,
    as_unavailable,
    database_problem_line,
    diagnose,
    redact_url,
)


def _wrapped(error: BaseException) -> sa_exc.DBAPIError:
    """How SQLAlchemy's asyncpg dialect hands a driver error up: orig caused by it."""
    adapted = Exception("adapted")
    adapted.__cause__ = error
    return sa_exc.DBAPIError("SELECT 1", None, adapted)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (asyncpg.InvalidPasswordError("password authentication failed"), AUTHENTICATION_FAILED),
        (asyncpg.InvalidAuthorizationSpecificationError("no such role"), AUTHENTICATION_FAILED),
        (asyncpg.InvalidCatalogNameError("database does not exist"), DATABASE_MISSING),
        (asyncpg.UndefinedTableError("relation does not exist"), SCHEMA_NOT_MIGRATED),
        (asyncpg.UndefinedColumnError("column does not exist"), SCHEMA_OUT_OF_DATE),
        (ConnectionRefusedError(111, "refused"), UNREACHABLE),
        (TimeoutError(), UNREACHABLE),
        (OSError(101, "network unreachable"), UNREACHABLE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
@pytest.mark.parametrize("wrap", [False, True], ids=["driver", "sqlalchemy"])
def test_misconfigurations_are_diagnosed(error: BaseException, reason: str, wrap: bool) -> None:
    assert diagnose(_wrapped(error) if wrap else error) == DatabaseProblem(reason)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate"),
        asyncpg.DeadlockDetectedError("deadlock"),
        PermissionError("not a network problem"),
        ValueError("a bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_other_failures_are_not_misconfigurations(error: BaseException) -> None:
    assert diagnose(error) is None
    assert diagnose(_wrapped(error)) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://leads:s3cret@127.0.0.1:5432/leads",
            "postgresql://leads:***@127.0.0.1:5432/leads",
        ),
        (
            "postgresql://postgres@127.0.0.1:5432/leads",
            "postgresql://postgres@127.0.0.1:5432/leads",
        ),
        ("postgresql://u:p%40ss@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("postgresql://u:@h/db", "postgresql://u:***@h/db"),
        ("postgresql://h:99999999/db", "postgresql://h:99999999/db"),
    ],
)
def test_the_password_is_hidden(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_line_names_cause_url_and_fix() -> None:
    line = DatabaseProblem(AUTHENTICATION_FAILED).line("postgresql://leads:pw@127.0.0.1:5432/leads")
    assert line == (
        "PostgreSQL refused the user name or password at "
        "postgresql://leads:***@127.0.0.1:5432/leads: set DATABASE_URL to a user and password "
        "that server accepts, or stop that server"
    )
    assert "\n" not in line and "pw" not in line.replace("password", "")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InvalidPasswordError("password authentication failed"),
        asyncpg.InvalidCatalogNameError("database does not exist"),
        asyncpg.UndefinedTableError("relation does not exist"),
        asyncpg.DeadlockDetectedError("deadlock"),
        ConnectionRefusedError(111, "refused"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_misconfigured_and_passing_failures_are_503s_caused_by_them(error: Exception) -> None:
    wrapped = _wrapped(error)
    unavailable = as_unavailable(wrapped)
    assert isinstance(unavailable, ServiceUnavailable)
    assert unavailable.__cause__ is wrapped


def test_a_bug_is_no_503() -> None:
    assert as_unavailable(_wrapped(asyncpg.UniqueViolationError("duplicate"))) is None
    assert as_unavailable(ValueError("a bug")) is None


def test_the_command_line_names_the_problem_under_any_wrapping() -> None:
    url = "postgresql://leads:secret@db.example:5432/leads"
    unavailable = ServiceUnavailable()
    unavailable.__cause__ = _wrapped(asyncpg.InvalidPasswordError("password authentication"))
    outer = RuntimeError("while applying the catalog")
    outer.__context__ = unavailable
    assert database_problem_line(outer, url) == (
        "PostgreSQL refused the user name or password at "
        "postgresql://leads:***@db.example:5432/leads: set DATABASE_URL to a user and password "
        "that server accepts, or stop that server"
    )


def test_the_command_line_reports_a_passing_failure_in_one_line() -> None:
    unavailable = ServiceUnavailable()
    unavailable.__cause__ = sa_exc.TimeoutError("QueuePool limit reached,\nconnection timed out")
    assert database_problem_line(unavailable, "postgresql://u:pw@h/db") == (
        "the database at postgresql://u:***@h/db is unavailable (QueuePool limit reached, "
        "connection timed out); try again"
    )


def test_other_errors_are_left_to_the_traceback() -> None:
    assert database_problem_line(ValueError("a bug"), "postgresql://h/db") is None
