"""`tradewind standalone` as a user runs it: one command, SQLite, no other services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from tests.integration.daemons import wait_for
from tradewind.auth.passwords import verify_password
from tradewind.models import DagRun, User

pytestmark = pytest.mark.e2e

DAG = """
from tradewind import DAG, task

with DAG("standalone_demo"):
    @task
    def hello():
        return "hi"

    hello()
"""


def test_standalone_runs_a_dag_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    home, dags = tmp_path / "home", tmp_path / "dags"
    dags.mkdir()
    (dags / "demo.py").write_text(textwrap.dedent(DAG))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(TRADEWIND_HOME=str(home), TRADEWIND_DAGS_FOLDER=str(dags))
    out = (tmp_path / "standalone.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tradewind.cli.main", "standalone"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log = tmp_path / "standalone.log"
    try:
        wait_for(lambda: "Scheduler started" in log.read_text(), "standalone to start")
        text = log.read_text()
        assert "Tradewind standalone is running." in text
        password = (home / "standalone_admin_password.txt").read_text().strip()
        assert f"admin / {password}" in text
        assert oct((home / "standalone_admin_password.txt").stat().st_mode & 0o777) == "0o600"
        engine = create_engine(f"sqlite:///{home / 'tradewind.db'}")
        with engine.connect() as conn:
            stored = conn.execute(
                select(User.password_hash).where(User.username == "admin")
            ).scalar()
        assert stored is not None
        assert verify_password(password, stored)
        for args in (
            ["dags", "unpause", "standalone_demo"],
            ["dags", "trigger", "standalone_demo"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "tradewind.cli.main", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr

        def finished() -> bool:
            with engine.connect() as conn:
                return conn.execute(select(DagRun.state)).scalar() == "success"

        wait_for(finished, "the triggered run to succeed")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        out.close()
    assert process.returncode == 0, log.read_text()
    assert "Scheduler stopped" in log.read_text()
    assert "DAG processor stopped" in log.read_text()
