"""The users' steps against a PostgreSQL configured exactly like the compose `postgres` service
(SCRAM; user, password and database `leads`; 127.0.0.1:5432), with no DATABASE_URL:

    leads db setup
    python -m uvicorn web.app:app --host 0.0.0.0 --port 8000
    the README's curl examples

and a server that refuses the password. The server runs in a private network namespace
(`unshare -n`): this module runs itself there (`python -m tests.platform.compose_like --
python -m tests.platform.test_compose_like_server`), prints what it observed as JSON, and the
tests below judge it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from infrastructure.database_problems import redact_url
from tests.platform import compose_like
from tests.static import background
from tests.static.background import Check, python_m
from tests.support import ROOT

WRONG_PASSWORD = "not-the-compose-password"
SERVE = [sys.executable, "-m", "uvicorn", "web.app:app", "--host", "0.0.0.0"]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def readme_curl_examples() -> list[str]:
    """The command lines of the README's "The API by example" block, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The API by example") :]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start : section.index("\n```", start)]
    return [line for line in block.splitlines() if line.startswith("curl ")]


# --- inside the namespace ----------------------------------------------------------------------


def _env() -> dict[str, str]:
    """No DATABASE_URL, and a working directory with no `.env`: the defaults alone."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "PYTHONPATH": str(ROOT)}


def _run(argv: list[str], workdir: Path) -> dict[str, Any]:
    result = subprocess.run(
        argv, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300
    )
    return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}


@contextmanager
def _uvicorn(workdir: Path, port: int) -> Iterator[Path]:
    """The spec's serving command; yields its log file once /healthz answers."""
    log_path = workdir / f"uvicorn-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port)],
            cwd=workdir,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text(encoding="utf-8", errors="replace"))
            time.sleep(0.05)
        yield log_path
    finally:
        process.terminate()
        process.wait(30)


def _wait_for(log_path: Path, text: str) -> str:
    deadline = time.monotonic() + 30
    while text not in (log := log_path.read_text(encoding="utf-8", errors="replace")):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return log


async def _set_password(password: str) -> None:
    connection = await asyncpg.connect(compose_like.url())
    try:
        user = compose_like.credentials()["POSTGRES_USER"]
        await connection.execute(f"ALTER ROLE \"{user}\" PASSWORD '{password}'")
    finally:
        await connection.close()


def observe() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="leads-smoke-"))
    observed: dict[str, Any] = {}
    observed["setup"] = _run([sys.executable, "-m", "cli", "db", "setup"], workdir)
    with _uvicorn(workdir, 8000):
        observed["readyz"] = httpx.get("http://127.0.0.1:8000/readyz", timeout=10).status_code
        observed["examples"] = [
            _run(["sh", "-c", f"{line} -w '\\n%{{http_code}}'"], workdir)["stdout"]
            for line in readme_curl_examples()
        ]
    # The same server, now refusing the password the defaults carry.
    asyncio.run(_set_password(WRONG_PASSWORD))
    observed["wrong_password"] = {
        "url": compose_like.url(),
        "leads": _run([sys.executable, "-m", "cli", "db", "setup"], workdir),
        "pytest": _run(
            [*PYTEST, "--rootdir", str(ROOT), str(ROOT / "tests/integration/test_schema.py")],
            workdir,
        ),
    }
    with _uvicorn(workdir, 8001) as log_path:
        observed["wrong_password"]["uvicorn_log"] = _wait_for(log_path, "database misconfigured")
    shutil.rmtree(workdir, ignore_errors=True)
    return observed


# --- the tests ---------------------------------------------------------------------------------


def _unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux network namespaces (unshare -n)"
    if os.geteuid() != 0:
        return "needs root for unshare -n"
    missing = [tool for tool in ("unshare", "ip", "curl", "sh") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)}"
    if compose_like.bin_dir() is None:
        return "needs PostgreSQL binaries (apt-get install postgresql-15, or the embedded ones)"
    return None


# Started in the background once the tests are collected (tests/static/background.py); where
# it cannot run, it fails at once and the fixture skips with the reason before reading it.
BACKGROUND = {
    "observed": Check(
        [
            (
                "unshare",
                "-n",
                "--",
                *python_m("tests.platform.compose_like", "--"),
                *python_m("tests.platform.test_compose_like_server"),
            )
        ]
    )
}


@pytest.fixture(scope="module")
def observed(request: pytest.FixtureRequest) -> dict[str, Any]:
    reason = _unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    outcome = background.result(request)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    report: dict[str, Any] = json.loads(outcome.stdout.strip().splitlines()[-1])
    return report


def test_leads_db_setup_migrates_and_loads_the_example_catalog(observed: dict[str, Any]) -> None:
    setup = observed["setup"]
    assert setup["returncode"] == 0, setup["stderr"]
    assert "example catalog loaded" in setup["stdout"]
    assert observed["readyz"] == 200


def _status_and_body(output: str) -> tuple[int, str]:
    body, _, status = output.rpartition("\n")
    return int(status), body


def test_readme_curl_examples_answer_as_documented(observed: dict[str, Any]) -> None:
    first, replay, form, mapped = (_status_and_body(o) for o in observed["examples"])
    assert first[0] == 201, first
    created = json.loads(first[1])
    assert created["source_id"] == 1
    assert (created["idempotency_key_origin"], created["replayed"]) == ("derived", False)

    assert replay[0] == 200, replay
    headers, _, body = replay[1].partition("\n\n")  # text mode: CRLF read as LF
    assert re.search(r"^Idempotent-Replayed: true\r?$", headers, re.MULTILINE | re.IGNORECASE)
    assert json.loads(body)["lead_id"] == created["lead_id"]
    assert json.loads(body)["replayed"] is True

    assert form[0] == 201, form
    assert json.loads(form[1])["idempotency_key"] == "order-1234"
    assert json.loads(form[1])["idempotency_key_origin"] == "client"

    assert mapped[0] == 201, mapped
    assert json.loads(mapped[1])["source_id"] == 1


def test_a_refused_password_is_one_line_everywhere(observed: dict[str, Any]) -> None:
    wrong = observed["wrong_password"]
    line = (
        f"PostgreSQL refused the user name or password at {redact_url(wrong['url'])}: "
        "set DATABASE_URL to a user and password that server accepts, or stop that server"
    )
    assert wrong["leads"]["returncode"] == 2
    assert wrong["leads"]["stderr"].splitlines()[-1] == f"leads: {line}"
    assert wrong["pytest"]["returncode"] == 2
    assert line in wrong["pytest"]["stdout"] + wrong["pytest"]["stderr"]
    warnings = [entry for entry in wrong["uvicorn_log"].splitlines() if line in entry]
    assert len(warnings) == 1, wrong["uvicorn_log"]
    for output in (wrong["leads"]["stderr"], wrong["pytest"]["stdout"], wrong["uvicorn_log"]):
        assert "Traceback" not in output


if __name__ == "__main__":
    print(json.dumps(observe()))
