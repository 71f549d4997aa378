"""A script written for the official `apache-airflow-client` 3.3.2 runs unchanged
against a real `tradewind webserver` and scheduler (processes, HTTP on a socket).

The client lives in a virtualenv of its own, never in Tradewind's environment (the
``client_python`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.daemons import Cluster, daemon_env, wait_for
from tradewind.auth.users import create_user
from tradewind.db import session_scope
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("airflow_client_script.py")

DAG = """
from tradewind import DAG, task

with DAG("client_demo", tags=["client"], params={"greeting": "hi"}):
    @task
    def greet(params=None):
        print("hello from client_demo")
        return params["greeting"]

    @task
    def shout(word):
        return word.upper()

    shout(greet())
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_script_for_the_official_client_runs_unchanged(
    client_python: Path,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    from scheduler.dag_processing.processor import DagFileProcessor

    (dags_folder / "client_demo.py").write_text(textwrap.dedent(DAG))
    (dags_folder / "broken.py").write_text("from tradewind import DAG\nraise RuntimeError('no')\n")
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_scope(session_factory) as session:
        create_user(session, "scripter", "s3cret-pass", "op")
    port = _free_port()
    cluster = Cluster("local", daemon_env(settings, TRADEWIND_API_PORT=str(port)), tmp_path)
    try:
        cluster.start(["webserver"], "webserver")
        cluster.scheduler()
        host = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{host}/api/v2/version"), "the webserver to answer")
        result = subprocess.run(
            [str(client_python), str(SCRIPT), host, "scripter", "s3cret-pass"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        cluster.stop()
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{cluster.output()}"
    assert "all steps passed" in result.stdout
    assert sys.executable != str(client_python)  # the client never entered our environment
