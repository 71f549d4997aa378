"""Tradewind's configuration: one settings object read from the environment.

Every setting is an environment variable prefixed ``TRADEWIND_`` (``TRADEWIND_PARALLELISM``),
optionally backed by a TOML file (``TRADEWIND_CONFIG_FILE``, default
``$TRADEWIND_HOME/tradewind.toml`` when it exists). The defaults give the embedded mode:
SQLite under ``TRADEWIND_HOME``, the local executor, ``./dags``.

Nothing is read at import time: call `get_settings()` in an entry point and pass the
object down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tradewind.errors import ConfigError

ENV_PREFIX = "TRADEWIND_"


def _default_home() -> Path:
    return Path("~/tradewind").expanduser()


class Settings(BaseSettings):
    """All of Tradewind's settings. Field ``x`` is read from ``TRADEWIND_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", validate_default=True, frozen=True
    )

    home: Path = Field(default_factory=_default_home, description="Where state lives.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the metadata DB; empty means SQLite in the home folder.",
    )
    dags_folder: Path = Field(default=Path("dags"), description="Folder scanned for DAG files.")
    executor: Literal["local", "sequential", "celery"] = "local"
    parallelism: int = Field(default=32, ge=1, description="Task tries running at once.")
    default_timezone: str = "UTC"
    dags_are_paused_at_creation: bool = True
    dag_file_processor_timeout_seconds: float = Field(default=30.0, gt=0)
    parsing_processes: int = Field(default=2, ge=1)
    min_file_process_interval_seconds: float = Field(default=30.0, ge=0)
    xcom_max_size_bytes: int = Field(default=1_048_576, ge=1)
    fernet_key: SecretStr | None = None
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0)
    job_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often components record that they are alive."
    )
    job_dead_after_seconds: float = Field(
        default=30.0, gt=0, description="A component silent this long counts as dead."
    )
    task_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a running try records that it is alive."
    )
    zombie_threshold_seconds: float = Field(
        default=60.0, gt=0, description="A running try silent this long is failed (a zombie)."
    )
    task_queued_timeout_seconds: float = Field(
        default=600.0, gt=0, description="A try queued this long is re-sent once, then failed."
    )
    scheduler_poll_seconds: float = Field(
        default=2.0, gt=0, description="Fallback wake-up of the scheduler loop."
    )
    shutdown_grace_seconds: float = Field(
        default=30.0, ge=0, description="How long running tries may finish on shutdown."
    )
    triggerer_capacity: int = Field(
        default=1000, ge=1, description="Triggers one triggerer runs at once."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Celery broker (Redis) for the celery executor and its workers.",
    )
    worker_concurrency: int = Field(
        default=4, ge=1, description="Tries a Celery worker runs at once (--concurrency)."
    )
    celery_visibility_timeout_seconds: float = Field(
        default=21600.0,
        gt=0,
        description="Redis redelivers a message not acknowledged this long (the claim "
        "makes redelivery harmless).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs API tokens; generated into TRADEWIND_HOME when unset.",
    )
    api_host: str = Field(default="127.0.0.1", description="Address `tradewind webserver` binds.")
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, description="Webserver worker processes.")
    api_token_expiration_seconds: int = Field(
        default=86400, ge=60, description="Lifetime of a token from POST /auth/token."
    )
    api_maximum_page_limit: int = Field(
        default=100, ge=1, description="Largest page a list endpoint returns."
    )
    ui_session_seconds: int = Field(
        default=43200, ge=60, description="How long a web UI login lasts."
    )
    ui_refresh_seconds: float = Field(
        default=2.0,
        ge=0.5,
        description="How often a UI page showing running work refreshes its live parts.",
    )
    ui_grid_runs: int = Field(
        default=25, ge=1, le=100, description="Runs a DAG's grid shows per page."
    )
    smtp_host: str = Field(default="localhost", description="SMTP server for emails.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_mail_from: str = "tradewind@localhost"
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home.expanduser().resolve() / 'tradewind.db'}"

    @property
    def resolved_dags_folder(self) -> Path:
        return self.dags_folder.expanduser().resolve()

    @property
    def logs_folder(self) -> Path:
        return self.home.expanduser().resolve() / "logs"


def _config_file() -> Path | None:
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG_FILE: no such file: {path}")
        return path
    home = Path(os.environ.get(f"{ENV_PREFIX}HOME") or _default_home()).expanduser()
    candidate = home / "tradewind.toml"
    return candidate if candidate.is_file() else None


def get_settings(**overrides: Any) -> Settings:
    """Read the settings now; a bad value raises `ConfigError` naming the variable."""
    import tomllib

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{_config_file()}: not valid TOML: {exc}") from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        value = error.get("input")
        problems.append(f"{ENV_PREFIX}{field.upper()}={value!r}: {error['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting; the README's table comes from it."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = "" if field.default_factory is not None else repr(field.default)
        rows.append((f"{ENV_PREFIX}{name.upper()}", default, field.description or ""))
    return rows
