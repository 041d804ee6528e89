"""Settings (SPEC §10): environment variables win, then `./.env`, then the defaults below.

The default DATABASE_URL is the host-side address of docker-compose.yml's `postgres` service
with the development credentials of `.env.example`. Nothing here connects anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.client_address import Network, NetworkError, parse_networks

DEFAULT_DATABASE_URL = "postgresql://leads:leads@127.0.0.1:5432/leads"
ENV_FILE = ".env"  # in the working directory: the repository root when run from a checkout


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def to_asyncpg_url(url: str) -> str:
    """Turn a libpq URI (`postgresql://…`, `postgres://…`) into SQLAlchemy's asyncpg form."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))
    raise SettingsError(
        "DATABASE_URL must be a PostgreSQL URI such as postgresql://user:pass@host:5432/db"
    )


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < 3600:
        raise SettingsError(f"{name} must be between 0 and 3600 seconds, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    parts = [part for part in env.get(name, "").split(",") if part.strip()]
    try:
        return parse_networks(parts)
    except NetworkError as error:
        raise SettingsError(
            f"{name} must be comma-separated networks such as 10.0.0.0/8,2001:db8::/32: {error}"
        ) from None


class _RawSettings(BaseSettings):
    """Each setting as written (a string, or None when unset or blank), from the environment
    or else `.env`; `Settings.from_env` checks and converts them."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    db_pool_size: str | None = Field(default=None, validation_alias="LEADS_DB_POOL_SIZE")
    db_timeout_s: str | None = Field(default=None, validation_alias="LEADS_DB_TIMEOUT_S")
    max_body_bytes: str | None = Field(default=None, validation_alias="LEADS_MAX_BODY_BYTES")
    trust_forwarded_host: str | None = Field(
        default=None, validation_alias="LEADS_TRUST_FORWARDED_HOST"
    )
    db_statement_cache: str | None = Field(
        default=None, validation_alias="LEADS_DB_STATEMENT_CACHE"
    )
    log_level: str | None = Field(default=None, validation_alias="LOG_LEVEL")
    trusted_proxies: str | None = Field(default=None, validation_alias="LEADS_TRUSTED_PROXIES")


# The environment variables of the settings, as the README's Configuration table lists them.
VARIABLES: tuple[str, ...] = tuple(
    str(field.validation_alias) for field in _RawSettings.model_fields.values()
)


def read_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings' variables that are set: from `env` alone when given, else from the
    process environment and then `./.env` (the environment wins)."""
    if env is not None:
        return {k: v for k, v in env.items() if k in VARIABLES and v.strip()}
    raw = _RawSettings()
    return {
        str(field.validation_alias): value
        for name, field in _RawSettings.model_fields.items()
        if (value := getattr(raw, name)) is not None and value.strip()
    }


def configured_database_url(env: Mapping[str, str] | None = None) -> str | None:
    """DATABASE_URL as the environment or `.env` sets it; None when neither does."""
    url = read_environment(env).get("DATABASE_URL", "").strip()
    return url or None


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = 10
    db_timeout_s: float = 5.0
    max_body_bytes: int = 65536
    trust_forwarded_host: bool = False
    db_statement_cache: bool = True
    log_level: str = "INFO"
    # Proxies whose X-Forwarded-For is believed when finding a lead's client address.
    trusted_proxies: tuple[Network, ...] = ()

    @property
    def async_database_url(self) -> str:
        return to_asyncpg_url(self.database_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """From `env` alone when given, else the environment, then `./.env`, then defaults."""
        env = read_environment(env)
        url = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
        to_asyncpg_url(url)  # fail at startup, not on the first request
        return cls(
            database_url=url,
            db_pool_size=_int(env, "LEADS_DB_POOL_SIZE", 10, 1),
            db_timeout_s=_float(env, "LEADS_DB_TIMEOUT_S", 5.0),
            max_body_bytes=_int(env, "LEADS_MAX_BODY_BYTES", 65536, 1024),
            trust_forwarded_host=_bool(env, "LEADS_TRUST_FORWARDED_HOST", False),
            db_statement_cache=_bool(env, "LEADS_DB_STATEMENT_CACHE", True),
            log_level=(env.get("LOG_LEVEL", "").strip() or "INFO").upper(),
            trusted_proxies=_networks(env, "LEADS_TRUSTED_PROXIES"),
        )
