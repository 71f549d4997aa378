"""Clearing a failed task instance gives it its retries again, as in Airflow: through a
real scheduler loop (sequential executor, controlled clock), on SQLite and Postgres."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.executors.sequential import SequentialExecutor
from scheduler.scheduler import Scheduler
from tests.integration.test_scheduler import parse_and_unpause
from tradewind.clearing import clear
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.db import session_scope
from tradewind.models import DagModel, DagRun, TaskInstance, TaskInstanceHistory
from tradewind.models.base import utcnow
from tradewind.settings import Settings
from tradewind.state import DagRunType

pytestmark = pytest.mark.integration


ALWAYS_FAILS = """
from datetime import timedelta
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def fail():
    raise RuntimeError("the source is down")

with DAG("always_fails"):
    PythonOperator(task_id="fetch", python_callable=fail, retries=1,
                   retry_delay=timedelta(seconds=0))
"""


def run_until_done(scheduler: Scheduler, factory: sessionmaker[Session], start: datetime) -> str:
    for second in range(30):
        scheduler.tick(start + timedelta(seconds=second))
        with factory() as session:
            state = session.scalar(select(DagRun.state).where(DagRun.run_id == "r1"))
        if state in ("success", "failed"):
            return str(state)
    with factory() as session:
        tis = [(t.state, t.try_number) for t in session.scalars(select(TaskInstance))]
    raise AssertionError(f"the run never ended: it is {state}, its tries {tis}")


def test_a_cleared_instance_gets_its_retries_again(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    # Tries stamp their ends with the real clock, so the loop's clock starts from it.
    t0 = utcnow()
    (dags_folder / "always_fails.py").write_text(textwrap.dedent(ALWAYS_FAILS))
    parse_and_unpause(session_factory, settings, "always_fails")
    with session_scope(session_factory) as session:
        model = session.get(DagModel, "always_fails")
        assert model is not None
        request = RunRequest(run_type=DagRunType.MANUAL, run_after=t0, run_id="r1")
        create_dag_run(session, model, latest_version(session, "always_fails"), request, now=t0)
    scheduler = Scheduler(session_factory, settings, SequentialExecutor(settings))
    assert run_until_done(scheduler, session_factory, t0) == "failed"

    with session_scope(session_factory) as session:
        rows = session.scalars(select(TaskInstance)).all()
        assert [(r.try_number, r.max_tries) for r in rows] == [(2, 1)]
        clear(session, rows, now=t0 + timedelta(minutes=1))
        assert rows[0].max_tries == 3
    assert run_until_done(scheduler, session_factory, t0 + timedelta(minutes=1)) == "failed"

    with session_factory() as session:
        ti = session.scalars(select(TaskInstance)).one()
        history = session.execute(
            select(TaskInstanceHistory.try_number, TaskInstanceHistory.state).order_by(
                TaskInstanceHistory.try_number
            )
        ).all()
    # Two tries before the clear and two after it: the retry budget was renewed.
    assert (ti.try_number, ti.state) == (4, "failed")
    assert [tuple(h) for h in history] == [
        (1, "up_for_retry"),
        (2, "failed"),
        (3, "up_for_retry"),
    ]
