"""The executor contract: one set of tests, run against every real executor.

A scheduler process (and, for Celery, two worker processes on a real Redis) runs
DAGs whose tasks write each execution to a side-effect file, so every test can tell
how many times each try ran. Local runs on SQLite and Postgres; Celery on Postgres
(its workers need a database they can all reach).
"""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import fresh_database
from tests.integration.daemons import Cluster, daemon_env, wait_for
from tradewind.db import session_scope
from tradewind.models import CallbackRequest, DagRun, LogChunk, TaskInstance
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

CASES = [
    pytest.param(("local", "sqlite"), id="local-sqlite"),
    pytest.param(("local", "postgres"), id="local-postgres", marks=pytest.mark.postgres),
    pytest.param(("celery", "postgres"), id="celery-postgres", marks=pytest.mark.postgres),
]

SIDE = """
from pathlib import Path
SIDE = Path({side!r})

def mark(line):
    with SIDE.open("a") as f:
        f.write(line + "\\n")
"""


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def db_url(case: tuple[str, str], request: pytest.FixtureRequest, home: Path) -> str:
    return fresh_database(case[1], request, home)


@pytest.fixture
def side(tmp_path: Path) -> Path:
    return tmp_path / "executions.txt"


@pytest.fixture
def cluster(
    case: tuple[str, str], settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    broker = request.getfixturevalue("redis_broker") if case[0] == "celery" else ""
    env = daemon_env(
        settings,
        TRADEWIND_BROKER_URL=broker,
        TRADEWIND_ZOMBIE_THRESHOLD_SECONDS="5",
    )
    cluster = Cluster(case[0], env, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def write(folder: Path, name: str, side: Path, source: str) -> None:
    (folder / name).write_text(SIDE.format(side=str(side)) + textwrap.dedent(source))


def parse_and_unpause(factory: sessionmaker[Session], settings: Settings, *dag_ids: str) -> None:
    from scheduler.dag_processing.processor import DagFileProcessor
    from tradewind.dags import set_paused

    DagFileProcessor(factory, settings).process(now=utcnow())
    with session_scope(factory) as session:
        set_paused(session, list(dag_ids), paused=False)


def finished_run(factory: sessionmaker[Session], dag_id: str, cluster: Cluster) -> DagRun:
    def done() -> DagRun | None:
        with factory() as session:
            run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id))
        return run if run is not None and run.state in ("success", "failed") else None

    try:
        return wait_for(done, f"the run of {dag_id} to finish", timeout=120)  # type: ignore[no-any-return]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.output()}") from None


def instances(factory: sessionmaker[Session], dag_id: str) -> dict[tuple[str, int], TaskInstance]:
    with factory() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id))
        return {(t.task_id, t.map_index): t for t in rows}


def test_mapping_retries_timeouts_and_xcom_behave_the_same_on_every_executor(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(
        dags_folder,
        "shapes.py",
        side,
        """
from datetime import timedelta
from tradewind import DAG, task, TaskGroup
from tradewind.operators.bash import BashOperator
from tradewind.operators.empty import EmptyOperator

with DAG("shapes", default_args={"retry_delay": timedelta(seconds=1)}):
    @task
    def parts():
        return ["a", "b", "c"]

    @task(retries=1)
    def handle(part, ti):
        mark(f"handle {part} try {ti.try_number}")
        print(f"handling {part}")
        if part == "b" and ti.try_number == 1:
            raise RuntimeError("flaky on the first try")
        return part.upper()

    @task
    def join(values):
        mark("join " + ",".join(values))

    with TaskGroup("fan"):
        done = join(handle.expand(part=parts()))
    done >> BashOperator(task_id="slow", bash_command="sleep 30",
                         execution_timeout=timedelta(seconds=1))
    EmptyOperator(task_id="start") >> done
""",
    )
    parse_and_unpause(session_factory, settings, "shapes")
    cluster.up()
    cluster.trigger("shapes")
    run = finished_run(session_factory, "shapes", cluster)
    assert run.state == "failed"  # `slow` timed out
    states = {k: (t.state, t.try_number) for k, t in instances(session_factory, "shapes").items()}
    assert states[("fan.handle", 1)] == ("success", 2)
    assert states[("fan.join", -1)] == ("success", 1)
    assert states[("slow", -1)] == ("failed", 1)
    assert sorted(side.read_text().splitlines()) == sorted(
        ["handle a try 1", "handle b try 1", "handle b try 2", "handle c try 1", "join A,B,C"]
    )
    with session_factory() as session:
        logged = "".join(
            session.scalars(
                select(LogChunk.content).where(
                    LogChunk.task_id == "fan.handle", LogChunk.map_index == 0
                )
            )
        )
    assert "handling a" in logged


def test_a_killed_try_is_retried_and_runs_once_per_try_number(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(
        dags_folder,
        "victim.py",
        side,
        """
import time
from datetime import timedelta
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def work(ti):
    mark(f"work try {ti.try_number}")
    if ti.try_number == 1:
        time.sleep(120)

with DAG("victim"):
    PythonOperator(task_id="work", python_callable=work, retries=1,
                   retry_delay=timedelta(seconds=0))
""",
    )
    parse_and_unpause(session_factory, settings, "victim")
    cluster.up()
    cluster.trigger("victim")

    def running_pid() -> int | None:
        ti = instances(session_factory, "victim").get(("work", -1))
        started = side.exists() and "work try 1" in side.read_text()
        return ti.pid if ti is not None and ti.state == "running" and started else None

    pid = wait_for(running_pid, "the first try to run")
    os.killpg(pid, signal.SIGKILL)  # the try's own process group (it made one)
    run = finished_run(session_factory, "victim", cluster)
    assert run.state == "success", cluster.output()
    assert side.read_text().splitlines() == ["work try 1", "work try 2"]
    with session_factory() as session:
        notes = "".join(session.scalars(select(LogChunk.content).where(LogChunk.try_number == 1)))
    assert "killed by SIGKILL" in notes


def test_a_dag_failure_callback_runs_exactly_once(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(
        dags_folder,
        "doomed.py",
        side,
        """
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def boom():
    raise ValueError("no")

def tell(context):
    mark(f"failed {context['dag_run'].run_id}")

with DAG("doomed", on_failure_callback=tell):
    PythonOperator(task_id="boom", python_callable=boom)
""",
    )
    parse_and_unpause(session_factory, settings, "doomed")
    cluster.up()
    cluster.trigger("doomed", "-r", "once")
    assert finished_run(session_factory, "doomed", cluster).state == "failed"
    wait_for(lambda: side.exists() and side.read_text(), "the failure callback")

    def callback_state() -> str | None:
        with session_factory() as session:
            return session.scalar(select(CallbackRequest.state))

    wait_for(lambda: callback_state() == "done", "the callback request to be recorded done")
    assert side.read_text().splitlines() == ["failed once"]


def test_a_deferred_task_resumes_in_the_same_try_on_every_executor(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(
        dags_folder,
        "napping.py",
        side,
        """
from datetime import timedelta
from tradewind import DAG, task
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.triggers.temporal import TimeDeltaTrigger

class Nap(BaseOperator):
    def execute(self, context):
        mark(f"nap started try {context['ti'].try_number}")
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=1)), method_name="woke",
                   kwargs={"note": "kept"})

    def woke(self, context, event=None, note=None):
        mark(f"nap woke try {context['ti'].try_number} with {note}")
        return note

with DAG("napping"):
    @task
    def after(value):
        mark(f"after got {value}")

    after(Nap(task_id="nap").output)
""",
    )
    parse_and_unpause(session_factory, settings, "napping")
    cluster.up()
    cluster.start(["triggerer"], "triggerer")
    cluster.trigger("napping", "-r", "once")
    assert finished_run(session_factory, "napping", cluster).state == "success"
    assert side.read_text().splitlines() == [
        "nap started try 1",
        "nap woke try 1 with kept",
        "after got kept",
    ]
    assert {
        k: (t.state, t.try_number) for k, t in instances(session_factory, "napping").items()
    } == {
        ("nap", -1): ("success", 1),
        ("after", -1): ("success", 1),
    }
