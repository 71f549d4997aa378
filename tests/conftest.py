"""Shared fixtures: isolated settings, and metadata databases on SQLite and Postgres.

Postgres and Redis are real servers. When one is missing, tests that need it fail in
CI (``CI=true``) with a message saying how to start it, and are skipped loudly
elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import uuid
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tradewind.db import make_engine, make_session_factory, migrate, use_session_factory
from tradewind.settings import Settings, get_settings

PG_ADMIN_URL = os.environ.get(
    "TRADEWIND_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def service_missing(what: str, how: str) -> None:
    message = f"{what} is not reachable; start it with: {how}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads the developer's ~/tradewind or TRADEWIND_* variables."""
    for key in list(os.environ):
        if key.startswith("TRADEWIND_") and key != "TRADEWIND_TEST_PG_URL":
            monkeypatch.delenv(key)
    home = tmp_path / "tradewind_home"
    monkeypatch.setenv("TRADEWIND_HOME", str(home))
    yield
    use_session_factory(None)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "tradewind_home"


@pytest.fixture
def dags_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    monkeypatch.setenv("TRADEWIND_DAGS_FOLDER", str(folder))
    return folder


@contextmanager
def new_pg_database(prefix: str) -> Iterator[str]:
    """Create an empty Postgres database (no schema); drop it on the way out."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing(f"Postgres at {PG_ADMIN_URL} ({exc.__class__.__name__})", START_POSTGRES)
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated Postgres database for this test session, dropped at the end."""
    with new_pg_database("tradewind_test") as url:
        engine = create_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


@pytest.fixture
def empty_pg_database() -> Iterator[str]:
    """A Postgres database with no schema at all, as a new deployment finds it."""
    with new_pg_database("tw_empty") as url:
        yield url


@pytest.fixture
def redis_broker() -> str:
    """The URL of an emptied Redis database of this test process's own (xdist workers
    get different ones), for Celery's broker."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    url = f"redis://127.0.0.1:6379/{10 + int(worker.removeprefix('gw') or 0) % 6}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        service_missing(f"Redis at 127.0.0.1:6379 ({exc.__class__.__name__})", START_REDIS)
    return url


def truncate_all(engine: Engine) -> None:
    from tradewind.models import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(
            text(
                "INSERT INTO slot_pool (pool, slots, description, include_deferred) "
                "VALUES ('default_pool', 128, 'Default pool', false)"
            )
        )


def fresh_database(kind: str, request: pytest.FixtureRequest, home: Path) -> str:
    """The URL of a migrated, empty metadata database of a kind (sqlite or postgres)."""
    if kind == "sqlite":
        url = f"sqlite:///{home / 'tradewind.db'}"
        engine = make_engine(get_settings(database_url=url))
        migrate(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("pg_database")
    engine = create_engine(url)
    truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, home: Path) -> str:
    """The URL of a migrated, empty metadata database: SQLite, then Postgres."""
    return fresh_database(request.param, request, home)


@pytest.fixture
def settings(
    db_url: str, dags_folder: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> Settings:
    monkeypatch.setenv("TRADEWIND_DATABASE_URL", db_url)
    monkeypatch.setenv("TRADEWIND_DAG_FILE_PROCESSOR_TIMEOUT_SECONDS", "3")
    return get_settings()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = make_session_factory(engine)
    use_session_factory(factory)
    return factory


AIRFLOW_CLIENT = "apache-airflow-client==3.3.2"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def client_python() -> Path:
    """The interpreter of a virtualenv that has the official client (created once)."""
    home = Path(os.environ.get("TRADEWIND_TEST_CLIENT_VENV", REPO / ".cache" / "airflow-client"))
    python = home / "bin" / "python"
    marker = home / f".installed-{AIRFLOW_CLIENT}"
    if not marker.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", AIRFLOW_CLIENT],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if install.returncode != 0:
            service_missing(f"PyPI (installing {AIRFLOW_CLIENT}: {install.stderr[-300:]})", "pip")
        marker.touch()
    return python
