"""The commands a deployment's containers run: `tradewind db wait` for a database that
is still starting, `tradewind init` (wait, migrate, create the admin user, again and
again), and `jobs check --this-host` as a container's health check."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PG_ADMIN_URL
from tradewind import jobs
from tradewind.auth.passwords import verify_password
from tradewind.auth.users import find_user
from tradewind.cli.main import main
from tradewind.db import make_engine, make_session_factory, session_scope
from tradewind.models.base import utcnow
from tradewind.settings import Settings, get_settings

pytestmark = pytest.mark.integration

PG = make_url(PG_ADMIN_URL)


def tradewind(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """`tradewind ARGS` as its own process (the way a container runs it)."""
    result = subprocess.run(
        [sys.executable, "-m", "tradewind.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


class LatePostgres:
    """A port that refuses connections until `open_after` seconds have passed, then
    forwards them to the real Postgres: a database container that is still starting."""

    def __init__(self, open_after: float) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()  # nothing listens here until the timer fires: connections are refused
        self._stopped = threading.Event()
        self._listener: socket.socket | None = None
        self._timer = threading.Timer(open_after, self._open)
        self._timer.start()

    def _open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by close()
                return
            upstream = socket.create_connection((PG.host or "127.0.0.1", PG.port or 5432))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()


def test_db_wait_retries_until_a_starting_database_answers(empty_pg_database: str) -> None:
    late = LatePostgres(open_after=2.0)
    try:
        url = make_url(empty_pg_database).set(port=late.port)
        started = time.monotonic()
        code, output = tradewind(
            "db",
            "wait",
            "--timeout",
            "60",
            env={"TRADEWIND_DATABASE_URL": url.render_as_string(hide_password=False)},
        )
        waited = time.monotonic() - started
    finally:
        late.close()
    assert code == 0, output
    assert "answers after" in output
    assert "Connection refused" in output  # each failed attempt says why
    assert waited >= 2.0  # it did wait for the port to open (not a speed assertion)


def test_db_wait_gives_up_naming_the_masked_url() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    code, output = tradewind(
        "db",
        "wait",
        "--timeout",
        "1.5",
        env={"TRADEWIND_DATABASE_URL": f"postgresql://bob:s3cret@127.0.0.1:{port}/nowhere"},
    )
    assert code == 1
    assert "error: gave up after" in output
    assert f"postgresql+psycopg://bob:***@127.0.0.1:{port}/nowhere" in output
    assert "s3cret" not in output


def test_db_wait_rejects_a_bad_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["db", "wait", "--timeout", "soon"])
    assert "'soon' is not a positive number of seconds" in capsys.readouterr().err


def test_init_migrates_creates_the_admin_once_and_can_run_again(
    empty_pg_database: str, tmp_path: Path
) -> None:
    env = {
        "TRADEWIND_HOME": str(tmp_path / "home"),
        "TRADEWIND_DATABASE_URL": empty_pg_database,
        "TRADEWIND_ADMIN_USERNAME": "ops-admin",
        "TRADEWIND_ADMIN_PASSWORD": "first-password",
    }
    code, output = tradewind("init", env=env)
    assert code == 0, output
    assert "Schema at revision" in output
    assert "Admin user ops-admin created." in output

    # A restarted deployment runs init again: nothing changes, the password stays.
    code, output = tradewind("init", env={**env, "TRADEWIND_ADMIN_PASSWORD": "other"})
    assert code == 0, output
    assert "Admin user ops-admin exists; left as it is." in output
    engine = make_engine(get_settings(database_url=empty_pg_database))
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = find_user(session, "ops-admin")
            assert user is not None
            assert user.role == "admin"
            assert verify_password("first-password", user.password_hash)
    finally:
        engine.dispose()
    assert tradewind("db", "check", env=env)[0] == 0


def test_init_without_a_password_says_which_variable(empty_pg_database: str) -> None:
    code, output = tradewind(
        "init",
        env={"TRADEWIND_DATABASE_URL": empty_pg_database, "TRADEWIND_ADMIN_PASSWORD": ""},
    )
    assert code == 1
    assert "TRADEWIND_ADMIN_PASSWORD is empty" in output
    assert "'admin'" in output


def test_init_on_sqlite(tmp_path: Path) -> None:
    env = {
        "TRADEWIND_HOME": str(tmp_path / "home"),
        "TRADEWIND_ADMIN_PASSWORD": "pw",
    }
    code, output = tradewind("init", env=env)
    assert code == 0, output
    assert "Admin user admin created." in output


def test_jobs_check_this_host_any_type(
    settings: Settings,
    session_factory: sessionmaker[Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["jobs", "check", "--job-type", "any", "--this-host"]) == 1
    assert "No alive jobs found on" in capsys.readouterr().out
    with session_scope(session_factory) as session:
        jobs.start_job(session, "worker", now=utcnow())
        jobs.start_job(session, "dag_processor", now=utcnow(), hostname="elsewhere")
        stale = jobs.start_job(session, "scheduler", now=utcnow() - timedelta(hours=1))
        stale.latest_heartbeat = utcnow() - timedelta(hours=1)
    assert main(["jobs", "check", "--job-type", "any", "--this-host", "--allow-multiple"]) == 0
    out = capsys.readouterr().out
    assert "Found alive worker job" in out
    assert "elsewhere" not in out
    assert main(["jobs", "check", "--job-type", "scheduler", "--this-host"]) == 1
    assert main(["jobs", "check", "--job-type", "dag_processor", "--hostname", "elsewhere"]) == 0
    capsys.readouterr()
    assert main(["jobs", "check", "--job-type", "zombie"]) == 1
    assert "unknown job type 'zombie'" in capsys.readouterr().err
