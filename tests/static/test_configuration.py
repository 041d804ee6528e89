"""One set of development credentials: the settings' defaults, `.env.example`, the compose
file and the README say the same, and settings read the environment, then `.env`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from dotenv import dotenv_values

from infrastructure.settings import (
    DEFAULT_DATABASE_URL,
    VARIABLES,
    Settings,
    SettingsError,
    configuration_table,
    configured_database_url,
)
from tests.support import ROOT

# A row of the README's Configuration table: | `NAME` | `default` | meaning |
README_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \| `([^`]*)` \|", re.MULTILINE)
# `.env.example` shows DATABASE_URL commented out: copied as it is, it sets nothing.
COMMENTED_DATABASE_URL = re.compile(r"^# DATABASE_URL=(\S+)$", re.MULTILINE)
# `${NAME:-default}` in the compose file.
COMPOSE_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def env_example() -> dict[str, str]:
    values = dotenv_values(ROOT / ".env.example")
    return {name: value for name, value in values.items() if value is not None}


def compose() -> dict[str, object]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def compose_defaults(text: str) -> dict[str, str]:
    return dict(COMPOSE_DEFAULT.findall(text))


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting in the environment, and a working directory of the test's own."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_database_url_is_the_one_env_example_shows_commented_out() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert COMMENTED_DATABASE_URL.findall(text) == [DEFAULT_DATABASE_URL]
    assert "DATABASE_URL" not in env_example()


def test_default_database_url_reaches_the_compose_postgres_service_from_the_host() -> None:
    example = env_example()
    url = urlsplit(DEFAULT_DATABASE_URL)
    assert (url.hostname, url.port) == ("127.0.0.1", int(example["POSTGRES_PORT"]))
    assert url.username == example["POSTGRES_USER"]
    assert url.password == example["POSTGRES_PASSWORD"]
    assert url.path == "/" + example["POSTGRES_DB"]


def test_readme_configuration_table_lists_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    configuration = readme[readme.index("## Configuration") :]
    rows = dict(README_ROW.findall(configuration))
    assert sorted(rows) == sorted(VARIABLES)
    assert Settings.from_env(rows) == Settings()
    assert rows["DATABASE_URL"] == DEFAULT_DATABASE_URL
    assert configuration_table() in configuration


def test_compose_defaults_are_the_values_of_env_example() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    postgres = yaml.safe_dump(services["postgres"])
    defaults = compose_defaults(postgres)
    example = env_example()
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_PORT"):
        assert defaults[name] == example[name], name
    # Published on the host's loopback interface only, at the port of DATABASE_URL.
    assert services["postgres"]["ports"] == ["127.0.0.1:${POSTGRES_PORT:-5432}:5432"]
    # The API container reaches the same database by the service's name.
    api_url = services["api"]["environment"]["DATABASE_URL"]
    resolved = COMPOSE_DEFAULT.sub(lambda m: m.group(2), api_url)
    assert resolved == DEFAULT_DATABASE_URL.replace("127.0.0.1", "postgres")


def test_compose_postgres_checks_passwords_with_scram_and_runs_the_init_script() -> None:
    postgres = compose()["services"]["postgres"]  # type: ignore[index]
    assert postgres["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "./docker/initdb:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]


def test_env_and_its_secrets_stay_out_of_git_and_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in (ROOT / ".dockerignore").read_text(encoding="utf-8").split()


def test_without_environment_or_env_file_the_defaults_apply(clean_environment: Path) -> None:
    assert Settings.from_env() == Settings()
    assert configured_database_url() is None


def test_env_example_copied_to_env_gives_the_defaults(clean_environment: Path) -> None:
    shutil.copy(ROOT / ".env.example", clean_environment / ".env")
    assert Settings.from_env() == Settings()
    assert configured_database_url() is None


def test_env_file_is_read_when_the_environment_is_silent(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(
        "POSTGRES_USER=ignored\nDATABASE_URL=postgresql://a:b@db.internal:6432/x\n"
        "LEADS_DB_POOL_SIZE=3\nLOG_LEVEL=debug\n",
        encoding="utf-8",
    )
    settings = Settings.from_env()
    assert settings.database_url == "postgresql://a:b@db.internal:6432/x"
    assert (settings.db_pool_size, settings.log_level) == (3, "DEBUG")


def test_environment_wins_over_env_file(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / ".env").write_text(
        "DATABASE_URL=postgresql://from-file/x\nLEADS_DB_POOL_SIZE=3\n", encoding="utf-8"
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-environment/y")
    monkeypatch.setenv("LEADS_DB_POOL_SIZE", "4")
    settings = Settings.from_env()
    assert (settings.database_url, settings.db_pool_size) == ("postgresql://from-environment/y", 4)
    assert configured_database_url() == "postgresql://from-environment/y"


def test_a_bad_value_in_env_file_is_one_line_naming_the_variable(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text("LEADS_DB_POOL_SIZE=lots\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    assert str(caught.value) == "LEADS_DB_POOL_SIZE must be an integer >= 1, got 'lots'"


def test_an_explicit_mapping_is_read_alone(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / ".env").write_text("LEADS_DB_POOL_SIZE=3\n", encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    assert Settings.from_env({"LEADS_DB_TIMEOUT_S": "2"}) == Settings(db_timeout_s=2.0)
