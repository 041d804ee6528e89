"""The `leads` command line: serve, database migrations, the classification catalog, import.

A verb's module is imported only when that verb runs (or shows its help): `leads --help` loads
argparse alone.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# verb → (its module, one line of help); the module's `register(parser)` adds the verb's
# arguments and sets `run(args)`, which returns the exit status.
VERBS = {
    "serve": ("cli.serve", "migrate, load the example catalog into an empty database, and serve"),
    "db": ("cli.db", "database schema migrations and setup (uses DATABASE_URL)"),
    "catalog": (
        "cli.catalog",
        "configure and check markets, verticals, offers, sources and posting URLs",
    ),
    "import": (
        "cli.import_leads",
        "create leads from a CSV or JSON Lines file (one IngestLead per row)",
    ),
    "erase": ("cli.erase", "erase a person's data (by email or phone) or old leads' data (by age)"),
}


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of `leads`: every verb's arguments, or only those of the verb `argv` names."""
    root = argparse.ArgumentParser(
        prog="leads", description="Lead ingestion service: run it and configure it."
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for verb, (module, help_line) in VERBS.items():
        verb_parser = commands.add_parser(verb, help=help_line)
        if chosen is None or chosen == verb:
            importlib.import_module(module).register(verb_parser)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parser(arguments).parse_args(arguments)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    # Only now: `--help` and usage errors need none of these.
    from infrastructure.database_problems import database_problem_line
    from infrastructure.local_postgres import LocalPostgresError
    from infrastructure.settings import DEFAULT_DATABASE_URL, Settings, SettingsError

    try:
        Settings.from_env()  # a bad setting stops every command with its line, before it acts
        return int(args.run(args))
    except (SettingsError, LocalPostgresError) as error:
        print(f"leads: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        try:
            url = Settings.from_env().database_url
        except SettingsError:
            url = DEFAULT_DATABASE_URL
        line = database_problem_line(error, url)
        if line is None:
            raise
        print(f"leads: {line}", file=sys.stderr)
        return 2
