"""`tradewind standalone` as a user runs it: one command, SQLite, no other services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.integration.daemons import wait_for
from tradewind.auth.passwords import verify_password
from tradewind.models import User

pytestmark = pytest.mark.e2e

DAG = """
from tradewind import DAG, task
from tradewind.sensors.time_delta import TimeDeltaSensor

with DAG("standalone_demo"):
    @task
    def hello():
        return "hi"

    # Deferred: standalone starts its triggerer only now.
    hello() >> TimeDeltaSensor(task_id="settle", delta=3, deferrable=True)
"""


def test_standalone_runs_a_dag_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    home, dags = tmp_path / "home", tmp_path / "dags"
    dags.mkdir()
    (dags / "demo.py").write_text(textwrap.dedent(DAG))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.update(
        TRADEWIND_HOME=str(home), TRADEWIND_DAGS_FOLDER=str(dags), TRADEWIND_API_PORT=str(port)
    )
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
        # The tour's REST steps: a token, unpause, trigger, poll until the run succeeds.
        api = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{api}/api/v2/monitor/health"), "the REST API to answer")
        with httpx.Client(base_url=api, timeout=30) as client:
            login = {"username": "admin", "password": password}
            answer = client.post("/auth/token", json=login)
            assert answer.status_code == 201, answer.text
            headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            wait_for(
                lambda: (
                    client.get("/api/v2/dags/standalone_demo", headers=headers).status_code == 200
                ),
                "the DAG to be parsed",
            )
            assert "Starting the triggerer" not in log.read_text()
            unpaused = client.patch(
                "/api/v2/dags/standalone_demo", json={"is_paused": False}, headers=headers
            )
            assert unpaused.json()["is_paused"] is False
            run = client.post(
                "/api/v2/dags/standalone_demo/dagRuns",
                json={"logical_date": None},
                headers=headers,
            ).json()
            run_url = f"/api/v2/dags/standalone_demo/dagRuns/{run['dag_run_id']}"
            wait_for(
                lambda: client.get(run_url, headers=headers).json()["state"] == "success",
                "the triggered run to succeed",
            )
            assert "Starting the triggerer: a deferred task waits" in log.read_text()
            task_log = client.get(f"{run_url}/taskInstances/hello/logs/1", headers=headers)
            lines = task_log.json()["content"]
            assert any("Try 1 ends: success" in line for line in lines), lines
        done = subprocess.run(
            [sys.executable, "-m", "tradewind.cli.main", "dags", "list-runs", "standalone_demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run["dag_run_id"] in done.stdout
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        out.close()
    assert process.returncode == 0, log.read_text()
    assert "Scheduler stopped" in log.read_text()
    assert "DAG processor stopped" in log.read_text()
    assert "Triggerer stopped" in log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
