"""A setting the service cannot use is one line — the variable, the value, what it accepts —
from `Settings.from_env`, from the spec's uvicorn command at startup and from every `leads`
command (exit 2); never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main, parser
from infrastructure.local_postgres import free_port
from infrastructure.settings import VARIABLES, Settings, SettingsError
from tests.support import ROOT

LINES = {
    ("LEADS_DB_POOL_SIZE", "abc"): "LEADS_DB_POOL_SIZE must be an integer >= 1, got 'abc'",
    ("LEADS_DB_POOL_SIZE", "0"): "LEADS_DB_POOL_SIZE must be an integer >= 1, got '0'",
    ("LEADS_MAX_BODY_BYTES", "1k"): "LEADS_MAX_BODY_BYTES must be an integer >= 1024, got '1k'",
    ("LEADS_DB_TIMEOUT_S", "0"): "LEADS_DB_TIMEOUT_S must be a number > 0 and < 3600, got '0'",
    ("LEADS_DB_TIMEOUT_S", "nan"): "LEADS_DB_TIMEOUT_S must be a number > 0 and < 3600, got 'nan'",
    ("LEADS_TRUST_FORWARDED_HOST", "maybe"): (
        "LEADS_TRUST_FORWARDED_HOST must be true or false, got 'maybe'"
    ),
    ("LEADS_DB_STATEMENT_CACHE", "2"): "LEADS_DB_STATEMENT_CACHE must be true or false, got '2'",
    ("LOG_LEVEL", "verbose"): (
        "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'verbose'"
    ),
    ("DATABASE_URL", "mysql://leads:s3cret@db/leads"): (
        "DATABASE_URL must be a PostgreSQL URI such as postgresql://user:pass@host:5432/db, "
        "got 'mysql://leads:***@db/leads'"
    ),
    ("LEADS_TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.1/8"): (
        "LEADS_TRUSTED_PROXIES must be comma-separated networks such as "
        "10.0.0.0/8,2001:db8::/32, got '10.0.0.0/8,10.0.0.1/8': "
        '"10.0.0.1/8" has bits set after the /8 mask: write 10.0.0.0/8'
    ),
}


@pytest.mark.parametrize(("setting", "line"), LINES.items(), ids=[f"{n}={v}" for n, v in LINES])
def test_a_bad_setting_is_one_line_naming_it_its_value_and_what_it_accepts(
    setting: tuple[str, str], line: str
) -> None:
    name, value = setting
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value) == line


def test_two_bad_settings_are_both_on_the_line() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LEADS_DB_POOL_SIZE": "abc", "LOG_LEVEL": "verbose"})
    assert str(caught.value) == "; ".join(
        (LINES[("LEADS_DB_POOL_SIZE", "abc")], LINES[("LOG_LEVEL", "verbose")])
    )


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No setting in the environment and no `.env`: a working directory of the test's own."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return {k: v for k, v in os.environ.items() if k not in VARIABLES}


@pytest.mark.parametrize("setting", [("LEADS_DB_POOL_SIZE", "abc"), ("LOG_LEVEL", "verbose")])
def test_the_api_started_with_a_bad_setting_logs_its_line_and_exits(
    setting: tuple[str, str], no_settings: dict[str, str], tmp_path: Path
) -> None:
    name, value = setting
    argv = [sys.executable, "-m", "uvicorn", "web.app:app", "--port", str(free_port())]
    result = subprocess.run(
        argv,
        cwd=tmp_path,
        env={**no_settings, "PYTHONPATH": str(ROOT), name: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    mentions = [line for line in result.stderr.splitlines() if name in line]
    assert mentions == [f"ERROR:    {LINES[setting]}"], result.stderr


def _leaf_commands(
    command: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[list[str]]:
    """Each command line `leads` accepts, its required arguments filled in with `x`."""
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaf_commands(sub, (*prefix, name))
            return
    positionals = [a for a in command._actions if not a.option_strings and a.nargs != "?"]
    # One option of each group of which one is required (`leads erase --email x`).
    chosen = [
        [group._group_actions[0].option_strings[0], "x"]
        for group in command._mutually_exclusive_groups
        if group.required
    ]
    yield [*prefix, *("x" for _ in positionals), *(arg for pair in chosen for arg in pair)]


COMMANDS = list(_leaf_commands(parser()))


def test_every_command_is_listed() -> None:
    assert ["serve"] in COMMANDS and ["import", "x"] in COMMANDS and len(COMMANDS) > 8


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_every_leads_command_with_a_bad_setting_is_one_line_and_exit_2(
    argv: list[str],
    no_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Nothing answers there, should a command get as far as connecting.
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    assert main(argv) == 2
    assert capsys.readouterr().err == f"leads: {LINES[('LOG_LEVEL', 'verbose')]}\n"
