"""`leads db upgrade|downgrade|current`: schema migrations on DATABASE_URL."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from infrastructure import migrate
from infrastructure.settings import Settings


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema migrations (uses DATABASE_URL)")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply migrations up to REVISION (default head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=_upgrade)
    downgrade = actions.add_parser("downgrade", help="revert migrations down to REVISION")
    downgrade.add_argument("revision", help="target revision, e.g. base or -1")
    downgrade.set_defaults(run=_downgrade)
    current = actions.add_parser("current", help="print the schema revision of the database")
    current.set_defaults(run=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from cli.main import run_async

    url = Settings.from_env().database_url
    run_async(migrate.upgrade(url, args.revision))
    print(f"database schema at {args.revision} ({migrate.head_revision()} is the latest)")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from cli.main import run_async

    run_async(migrate.downgrade(Settings.from_env().database_url, args.revision))
    print(f"database schema downgraded to {args.revision}")
    return 0


async def _read_current() -> int:
    engine = create_async_engine(Settings.from_env().async_database_url)
    try:
        async with engine.connect() as connection:
            revision = await migrate.current_revision(connection)
    finally:
        await engine.dispose()
    head = migrate.head_revision()
    print(f"current: {revision or 'none (not migrated)'}; latest: {head}")
    return 0 if revision == head else 1


def _current(args: argparse.Namespace) -> int:
    from cli.main import run_async

    _ = args
    return run_async(_read_current())
