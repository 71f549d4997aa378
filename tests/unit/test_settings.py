"""Settings: defaults, the environment, the TOML file, and errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradewind.errors import ConfigError
from tradewind.settings import get_settings


def test_defaults_give_the_embedded_mode(home: Path) -> None:
    settings = get_settings()
    assert settings.executor == "local"
    assert settings.resolved_database_url == f"sqlite:///{home.resolve() / 'tradewind.db'}"


def test_the_toml_file_is_read_and_the_environment_wins(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir(parents=True)
    (home / "tradewind.toml").write_text('parallelism = 7\nexecutor = "sequential"\n')
    monkeypatch.setenv("TRADEWIND_EXECUTOR", "local")
    settings = get_settings()
    assert (settings.parallelism, settings.executor) == (7, "local")


def test_an_invalid_toml_file_is_named(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "tradewind.toml").write_text("parallelism = = 3\n")
    with pytest.raises(ConfigError, match=r"tradewind\.toml: not valid TOML"):
        get_settings()


def test_a_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEWIND_CONFIG_FILE", "/nonexistent/tw.toml")
    with pytest.raises(ConfigError, match="TRADEWIND_CONFIG_FILE: no such file"):
        get_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRADEWIND_PARALLELISM", "0"),
        ("TRADEWIND_DEFAULT_TIMEZONE", "Mars/Olympus"),
        ("TRADEWIND_LOG_LEVEL", "LOUD"),
        ("TRADEWIND_SMTP_PORT", "70000"),
    ],
)
def test_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        get_settings()


def test_an_impossible_home_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tradewind.db import make_engine

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TRADEWIND_HOME", str(blocker / "home"))
    with pytest.raises(ConfigError, match="cannot be created"):
        make_engine(get_settings())
