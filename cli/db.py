"""`leads db upgrade|downgrade|current|setup|init-sql`: the schema (and example catalog) of
DATABASE_URL, or the SQL that creates them on a new database."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from domain.catalog import CatalogError
from infrastructure import migrate
from infrastructure.init_sql import INIT_SQL_PATH, init_sql
from infrastructure.schema_revision import current_revision, head_revision
from infrastructure.settings import Settings


def register(db: argparse.ArgumentParser) -> None:
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply migrations up to REVISION (default head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=_upgrade)
    downgrade = actions.add_parser("downgrade", help="revert migrations down to REVISION")
    downgrade.add_argument("revision", help="target revision, e.g. base or -1")
    downgrade.set_defaults(run=_downgrade)
    current = actions.add_parser("current", help="print the schema revision of the database")
    current.set_defaults(run=_current)
    setup = actions.add_parser(
        "setup",
        help="migrate to the latest schema and load the example catalog if the catalog is empty",
    )
    setup.set_defaults(run=_setup)
    script = actions.add_parser(
        "init-sql",
        help="print the SQL that creates a new database: schema and example catalog "
        f"(the compose file runs {INIT_SQL_PATH})",
    )
    script.add_argument(
        "--catalog", type=Path, help="catalog file to include (default: examples/catalog.yaml)"
    )
    script.add_argument(
        "--output", "-o", type=Path, help="write to this file (UTF-8, LF) instead of stdout"
    )
    script.set_defaults(run=_init_sql)


def _upgrade(args: argparse.Namespace) -> int:
    asyncio.run(migrate.upgrade(Settings.from_env().database_url, args.revision))
    print(f"database schema at {args.revision} ({head_revision()} is the latest)")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    asyncio.run(migrate.downgrade(Settings.from_env().database_url, args.revision))
    print(f"database schema downgraded to {args.revision}")
    return 0


def _current(_: argparse.Namespace) -> int:
    async def read() -> str | None:
        engine = create_async_engine(Settings.from_env().async_database_url)
        try:
            async with engine.connect() as connection:
                return await current_revision(connection)
        finally:
            await engine.dispose()

    revision = asyncio.run(read())
    head = head_revision()
    print(f"current: {revision or 'none (not migrated)'}; latest: {head}")
    return 0 if revision == head else 1


def _setup(_: argparse.Namespace) -> int:
    from cli.serve import set_up

    loaded = asyncio.run(set_up(Settings.from_env().database_url))
    catalog = "example catalog loaded" if loaded else "catalog left as it was (not empty)"
    print(f"database ready: schema at {head_revision()} (the latest), {catalog}")
    return 0


def _init_sql(args: argparse.Namespace) -> int:
    from cli.catalog_file import CatalogFileError, load_catalog_file
    from cli.serve import example_catalog_path

    path = args.catalog or example_catalog_path()
    if path is None:
        print("leads: no examples/catalog.yaml here: name one with --catalog FILE", file=sys.stderr)
        return 2
    name = path.as_posix() if args.catalog else "examples/catalog.yaml"
    try:
        script = asyncio.run(init_sql(load_catalog_file(path), name))
    except (CatalogFileError, CatalogError) as error:
        where = "" if isinstance(error, CatalogFileError) else f"{name}: "  # its own says where
        print(f"leads: {where}{error}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(script)
    else:
        with args.output.open("w", encoding="utf-8", newline="\n") as file:
            file.write(script)
        print(f"wrote {args.output}")
    return 0
