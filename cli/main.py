"""The `leads` command line: serve, database migrations, and the classification catalog."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from cli import catalog, db, import_leads, serve
from domain.errors import ServiceUnavailable
from infrastructure.database_problems import diagnose, redact_url
from infrastructure.local_postgres import LocalPostgresError
from infrastructure.settings import DEFAULT_DATABASE_URL, Settings, SettingsError

# Each module adds its sub-commands; `run(args)` returns the exit status.
COMMAND_MODULES = (serve, db, catalog, import_leads)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="leads", description="Lead ingestion service: run it and configure it."
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except (SettingsError, LocalPostgresError) as error:
        print(f"leads: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        line = database_problem_line(error)
        if line is None:
            raise
        print(f"leads: {line}", file=sys.stderr)
        return 2


def _configured_url() -> str:
    try:
        return Settings.from_env().database_url
    except SettingsError:
        return DEFAULT_DATABASE_URL


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and what caused it, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def database_problem_line(error: BaseException, url: str | None = None) -> str | None:
    """One line saying what is wrong with the database and how to fix it, for an error
    that comes from it (None otherwise: a bug, shown with its traceback)."""
    url = url or _configured_url()
    causes = _causes(error)
    for cause in causes:
        problem = diagnose(cause)
        if problem is not None:
            return problem.line(url)
    if any(isinstance(cause, ServiceUnavailable) for cause in causes):
        reason = " ".join(str(causes[-1]).split()) or type(causes[-1]).__name__
        return f"the database at {redact_url(url)} is unavailable ({reason}); try again"
    return None


def run_async(coroutine: Coroutine[Any, Any, object]) -> int:
    result = asyncio.run(coroutine)
    return int(result) if isinstance(result, int) else 0
