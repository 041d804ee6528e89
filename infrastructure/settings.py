"""Settings (SPEC §10): one model, each setting a field with its variable, default and meaning.
Nothing here connects. The default DATABASE_URL is docker-compose.yml's `postgres` service seen
from the host, with the development credentials of `.env.example`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from domain.client_address import Network, parse_networks
from infrastructure.database_problems import redact_url

DEFAULT_DATABASE_URL = "postgresql://leads:leads@127.0.0.1:5432/leads"
ENV_FILE = ".env"  # in the working directory: the repository root when run from a checkout
# A libpq URI, or SQLAlchemy's asyncpg form of one.
POSTGRESQL_URI = r"(?i)^(postgresql|postgres|postgresql\+asyncpg)://"
A_POSTGRESQL_URI = "a PostgreSQL URI such as postgresql://user:pass@host:5432/db"


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def to_asyncpg_url(url: str) -> str:
    url = url.strip()
    if not re.match(POSTGRESQL_URI, url):
        raise SettingsError(f"DATABASE_URL must be {A_POSTGRESQL_URI}")
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql+asyncpg"))


@dataclass(frozen=True)
class Accepts:
    """A setting's error line for a type of our own: what it accepts, and how the value is
    shown (without a password)."""

    text: str
    shown: Callable[[str], str] = repr


def _erasure_key(value: str) -> str:
    if value and len(value) < 32:
        raise ValueError("too short to be a secret")
    return value


PostgresqlUri = Annotated[
    str, Field(pattern=POSTGRESQL_URI), Accepts(A_POSTGRESQL_URI, lambda url: repr(redact_url(url)))
]
Networks = Annotated[
    tuple[Network, ...],
    NoDecode,  # a comma-separated list, not JSON
    BeforeValidator(
        lambda value: (
            parse_networks(part for part in value.split(",") if part.strip())
            if isinstance(value, str)
            else value
        )
    ),
    Accepts("comma-separated networks such as 10.0.0.0/8,2001:db8::/32"),
]
# Empty: unset. Never written out: an error line gives its length only.
ErasureKey = Annotated[
    str,
    AfterValidator(_erasure_key),
    Accepts("a secret of 32 characters or more", lambda key: f"{len(key)} characters"),
]


def _variable(name: str, default: object, meaning: str, **constraints: Any) -> Any:
    return Field(default, validation_alias=name, description=meaning, **constraints)


class Settings(BaseSettings):
    """Built with values, it holds those and the defaults (tests and `leads` build them so);
    `from_env` adds the environment and `./.env`. The fields in the README's order."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
    )

    database_url: PostgresqlUri = _variable(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        "libpq URI; `postgresql+asyncpg://` also accepted. "
        "The default is the compose `postgres` service seen from the host",
    )
    db_pool_size: int = _variable("LEADS_DB_POOL_SIZE", 10, "connections per process", ge=1)
    db_timeout_s: float = _variable(
        "LEADS_DB_TIMEOUT_S",
        5.0,
        "the whole database part of a request (pool wait, connect, statements, commit); "
        "past it, 503",
        gt=0,
        lt=3600,
    )
    max_body_bytes: int = _variable("LEADS_MAX_BODY_BYTES", 65536, "request body limit", ge=1024)
    request_timeout_s: float = _variable(
        "LEADS_REQUEST_TIMEOUT_S",
        30.0,
        "time for a request's header section and body to arrive, from its first byte; "
        "past it, 408 and the connection is closed",
        gt=0,
        lt=3600,
    )
    trust_forwarded_host: bool = _variable(
        "LEADS_TRUST_FORWARDED_HOST",
        False,
        "classify by the first `X-Forwarded-Host` (only behind a proxy you control)",
    )
    # Proxies whose X-Forwarded-For is believed when finding a lead's client address.
    trusted_proxies: Networks = _variable(
        "LEADS_TRUSTED_PROXIES",
        (),
        "empty: none; comma-separated networks of your own proxies (`10.0.0.0/8,2001:db8::/48`), "
        "whose `X-Forwarded-For` gives the client address "
        "(see [docs/securing-sources.md](docs/securing-sources.md))",
    )
    db_statement_cache: bool = _variable(
        "LEADS_DB_STATEMENT_CACHE", True, "set `false` behind PgBouncer in transaction pooling mode"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = _variable(
        "LOG_LEVEL", "INFO", "level of the `leads` loggers"
    )
    erasure_key: ErasureKey = _variable(
        "LEADS_ERASURE_KEY",
        "",
        "secret keying the hash of the email or phone number an erasure matched, kept in its "
        "audit row; `leads erase --email/--phone` needs it "
        "(see [docs/consent-and-erasure.md](docs/consent-and-erasure.md))",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment and `.env` only through `from_env`

    @property
    def async_database_url(self) -> str:
        return to_asyncpg_url(self.database_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """From `env` alone when given, else the environment, then `./.env`, then defaults."""
        written = read_environment(env)
        try:
            return cls.model_validate(written)
        except ValidationError as error:
            raise SettingsError("; ".join(_line(e, written) for e in error.errors())) from None


# The environment variables of the settings, as the README's Configuration table lists them.
VARIABLES: tuple[str, ...] = tuple(str(f.validation_alias) for f in Settings.model_fields.values())
_FIELDS = dict(zip(VARIABLES, Settings.model_fields.values(), strict=True))
_KINDS: dict[object, str] = {bool: "true or false", int: "an integer", float: "a number"}
_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def read_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings' variables that are set (the environment wins over `./.env`)."""
    if env is None:
        try:
            env = {**DotEnvSettingsSource(Settings)(), **EnvSettingsSource(Settings)()}
        except UnicodeDecodeError:
            raise SettingsError(
                f"{os.path.abspath(ENV_FILE)} is not UTF-8 text: save it as UTF-8"
            ) from None
    return {k: v for k, v in env.items() if k in VARIABLES and v.strip()}


def configured_database_url(env: Mapping[str, str] | None = None) -> str | None:
    """DATABASE_URL as the environment or `.env` sets it; None when neither does."""
    return read_environment(env).get("DATABASE_URL", "").strip() or None


def _line(error: Any, written: Mapping[str, str]) -> str:
    """`NAME must be what it accepts, got 'value as written'`, and why when a validator says."""
    name = str(error["loc"][0])
    field = _FIELDS[name]
    accepts = next((m for m in field.metadata if isinstance(m, Accepts)), None)
    if accepts is None:
        kind = field.annotation
        bounds = " and ".join(
            f"{symbol} {getattr(marker, bound)}"
            for marker in field.metadata
            for bound, symbol in _BOUNDS.items()
            if getattr(marker, bound, None) is not None
        )
        words = (
            "one of " + ", ".join(get_args(kind))
            if get_origin(kind) is Literal
            else f"{_KINDS[kind]} {bounds}".strip()
        )
        accepts = Accepts(words)
    line = f"{name} must be {accepts.text}, got {accepts.shown(written.get(name, error['input']))}"
    # A validator of ours (not a type or a bound) says why it refused the value.
    return f"{line}: {error['ctx']['error']}" if error["type"] == "value_error" else line


def _default(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def configuration_table() -> str:
    """The README's Configuration table (variable, default, meaning), from the model."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [
        f"| `{name}` | `{_default(field.default)}` | {field.description} |"
        for name, field in _FIELDS.items()
    ]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(configuration_table(), end="")
