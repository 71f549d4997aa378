"""Liveness, driven by scheduler passes with a controlled clock: zombies, tries stuck in
queued, dagrun_timeout, pools."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.executors.sequential import SequentialExecutor
from scheduler.scheduler import Scheduler
from tests.integration.test_scheduler import parse_and_unpause
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.db import session_scope
from tradewind.models import DagModel, DagRun, TaskInstance
from tradewind.settings import Settings
from tradewind.state import DagRunType
from worker.task_runner import TryRequest

pytestmark = pytest.mark.integration
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

DAG = """
from datetime import timedelta
from tradewind import DAG
from tradewind.operators.python import PythonOperator

with DAG("live", dagrun_timeout=timedelta(minutes=30)):
    PythonOperator(task_id="t", python_callable=lambda: None, retries={retries},
                   retry_delay=timedelta(seconds=0))
"""


class Recorder(SequentialExecutor):
    """Keeps what it was asked to run, runs nothing (the test plays the worker)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[TryRequest] = []

    def queue(self, request: TryRequest) -> None:
        self.sent.append(request)

    def open_slots(self) -> int:
        return 8


def setup(
    dags_folder: Path, settings: Settings, factory: sessionmaker[Session], retries: int
) -> tuple[Scheduler, Recorder]:
    (dags_folder / "live.py").write_text(textwrap.dedent(DAG.format(retries=retries)))
    parse_and_unpause(factory, settings, "live")
    with session_scope(factory) as session:
        model = session.get(DagModel, "live")
        create_dag_run(
            session,
            model,
            latest_version(session, "live"),  # type: ignore[arg-type]
            RunRequest(run_type=DagRunType.MANUAL, run_after=NOW, run_id="r"),
            now=NOW,
        )
    executor = Recorder(settings)
    return Scheduler(factory, settings, executor), executor


def ti_state(factory: sessionmaker[Session]) -> tuple[str | None, int]:
    with factory() as session:
        ti = session.scalar(select(TaskInstance).where(TaskInstance.run_id == "r"))
        assert ti is not None
        return ti.state, ti.try_number


def test_a_zombie_is_retried_then_failed(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    scheduler, executor = setup(dags_folder, settings, session_factory, retries=1)
    scheduler.tick(NOW)
    assert [r.try_number for r in executor.sent] == [1]
    stale = NOW - timedelta(minutes=5)
    with session_scope(session_factory) as session:  # the worker claimed it, then went silent
        session.execute(
            update(TaskInstance).values(state="running", heartbeat_at=stale, start_date=stale)
        )
    scheduler.tick(NOW + timedelta(seconds=10))
    assert ti_state(session_factory) == ("up_for_retry", 1)
    scheduler.tick(NOW + timedelta(seconds=20))
    assert [r.try_number for r in executor.sent] == [1, 2]
    with session_scope(session_factory) as session:
        session.execute(update(TaskInstance).values(state="running", heartbeat_at=stale))
    scheduler.tick(NOW + timedelta(seconds=30))
    assert ti_state(session_factory) == ("failed", 2)


def test_a_try_stuck_in_queued_is_sent_again_once_then_failed(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    scheduler, executor = setup(dags_folder, settings, session_factory, retries=0)
    scheduler.tick(NOW)
    assert len(executor.sent) == 1
    later = NOW + timedelta(seconds=settings.task_queued_timeout_seconds + 1)
    scheduler.tick(later)
    assert [r.try_number for r in executor.sent] == [1, 1]  # the same try, sent again
    assert ti_state(session_factory) == ("queued", 1)
    scheduler.tick(later + timedelta(seconds=settings.task_queued_timeout_seconds + 1))
    assert ti_state(session_factory) == ("failed", 1)


def test_dagrun_timeout_fails_the_run_and_its_unfinished_tasks(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    scheduler, _ = setup(dags_folder, settings, session_factory, retries=0)
    scheduler.tick(NOW)
    scheduler.tick(NOW + timedelta(minutes=29))
    with session_factory() as session:
        assert session.scalar(select(DagRun.state)) == "running"
    scheduler.tick(NOW + timedelta(minutes=31))
    with session_factory() as session:
        run = session.scalar(select(DagRun))
        assert run is not None
        assert (run.state, run.note) == ("failed", "failed: exceeded dagrun_timeout of 0:30:00")
    assert ti_state(session_factory)[0] == "failed"


def test_a_pool_limits_how_many_tries_run_at_once(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from tradewind.models import Pool

    (dags_folder / "pooled.py").write_text(
        textwrap.dedent("""
    from tradewind import DAG
    from tradewind.operators.python import PythonOperator

    with DAG("pooled"):
        for i in range(5):
            PythonOperator(task_id=f"t{i}", python_callable=lambda: None, pool="gpu")
        PythonOperator(task_id="big", python_callable=lambda: None, pool="gpu", pool_slots=3)
    """)
    )
    with session_scope(session_factory) as session:
        session.add(Pool(pool="gpu", slots=2, description="two GPUs"))
    parse_and_unpause(session_factory, settings, "pooled")
    with session_scope(session_factory) as session:
        create_dag_run(
            session,
            session.get(DagModel, "pooled"),
            latest_version(session, "pooled"),  # type: ignore[arg-type]
            RunRequest(run_type=DagRunType.MANUAL, run_after=NOW, run_id="p"),
            now=NOW,
        )
    executor = Recorder(settings)
    scheduler = Scheduler(session_factory, settings, executor)
    scheduler.tick(NOW)
    scheduler.tick(NOW)
    assert len(executor.sent) == 2  # two slots; `big` needs three and never fits
    with session_factory() as session:
        waiting = session.scalar(select(TaskInstance.state).where(TaskInstance.task_id == "big"))
    assert waiting == "scheduled"
