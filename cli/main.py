"""The `leads` command line: serve, database migrations, and the classification catalog."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from cli import catalog, db, import_leads, serve
from cli.db import database_problem_line
from infrastructure.local_postgres import LocalPostgresError
from infrastructure.settings import Settings, SettingsError

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
        Settings.from_env()  # a bad setting stops every command with its line, before it acts
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


def run_async(coroutine: Coroutine[Any, Any, object]) -> int:
    result = asyncio.run(coroutine)
    return int(result) if isinstance(result, int) else 0
