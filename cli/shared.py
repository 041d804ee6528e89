"""What the `leads` verbs share: running a coroutine as a command, and the one line that says
what is wrong with the database."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

from domain.errors import ServiceUnavailable
from infrastructure.database_problems import diagnose, redact_url
from infrastructure.settings import DEFAULT_DATABASE_URL, Settings, SettingsError


def run_async(coroutine: Coroutine[Any, Any, object]) -> int:
    """Run a verb's coroutine; an int it returns is the exit status, anything else is 0."""
    result = asyncio.run(coroutine)
    return int(result) if isinstance(result, int) else 0


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _configured_url() -> str:
    try:
        return Settings.from_env().database_url
    except SettingsError:
        return DEFAULT_DATABASE_URL


def diagnosed_line(error: BaseException, url: str) -> str | None:
    """The line of the misconfiguration found in `error` or what caused it, if any."""
    for cause in _causes(error):
        problem = diagnose(cause)
        if problem is not None:
            return problem.line(url)
    return None


def database_problem_line(error: BaseException, url: str | None = None) -> str | None:
    """One line saying what is wrong with the database (URL without its password) and how to
    fix it, for an error that comes from it; None otherwise (a bug, shown with its traceback)."""
    url = url or _configured_url()
    diagnosed = diagnosed_line(error, url)
    if diagnosed is not None:
        return diagnosed
    causes = list(_causes(error))
    if any(isinstance(cause, ServiceUnavailable) for cause in causes):
        reason = " ".join(str(causes[-1]).split()) or type(causes[-1]).__name__
        return f"the database at {redact_url(url)} is unavailable ({reason}); try again"
    return None
