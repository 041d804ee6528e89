"""`leads serve`: find or start a database (`resolve_server`; on a server found rather than
named by DATABASE_URL, database `leads` created if missing), migrate it, load the example
catalog, serve."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import uvicorn

from cli.catalog import load_catalog_file, summary
from commands.catalog import ApplyCatalog
from infrastructure import migrate
from infrastructure.container import bootstrap
from infrastructure.local_postgres import resolve_server
from infrastructure.provisioning import ensure_database, with_database
from infrastructure.settings import Settings
from queries.catalog import ExportCatalog

DATA_DIR = Path(".data")
LOCAL_DATABASE_NAME = "leads"
EXAMPLE_CATALOGS = (
    Path(__file__).resolve().parent.parent / "examples" / "catalog.yaml",  # a checkout
    Path("examples") / "catalog.yaml",  # the working directory of the container image
)


def register(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=run)


def example_catalog_path() -> Path | None:
    return next((path for path in EXAMPLE_CATALOGS if path.is_file()), None)


async def set_up(url: str) -> bool:
    await migrate.upgrade(url)
    return await load_example_catalog(url)


async def load_example_catalog(url: str) -> bool:
    """Apply the example catalog when the catalog has no market yet; True when it did."""
    application = bootstrap(Settings(database_url=url))  # one pool for the query and the apply
    try:
        if (await application.query(ExportCatalog()))["markets"]:
            return False
        path = example_catalog_path()
        if path is None:
            print("leads: the catalog is empty; load one with `leads catalog apply FILE`")
            return False
        applied = await application.bus.execute(ApplyCatalog(load_catalog_file(path)))
    finally:
        await application.close()
    print(f"leads: loaded the example catalog {path}: {summary(applied)}", flush=True)
    return True


def run(args: argparse.Namespace) -> int:
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into an exit so the
    # embedded server below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    resolved = resolve_server(DATA_DIR)
    print(f"leads: database: {resolved.description}", flush=True)
    try:
        url = resolved.server_url
        if resolved.description != "DATABASE_URL":
            # Created from the server's maintenance database, `postgres`, when missing.
            url = asyncio.run(ensure_database(with_database(url, "postgres"), LOCAL_DATABASE_NAME))
        asyncio.run(set_up(url))
        os.environ["DATABASE_URL"] = url
        uvicorn.run("web.app:app", host=args.host, port=args.port, workers=args.workers)
    finally:
        if resolved.embedded is not None:
            resolved.embedded.stop()
    return 0
