"""Schedules as the scheduler applies them, against what `tradewind dags next-execution`
lists (`tradewind.schedules.next_runs`): a cron in a time zone across a DST change,
``end_date``, ``@once`` and ``@continuous``, with a controlled clock, on SQLite and
Postgres."""

from __future__ import annotations

import itertools
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.dag_processing.processor import DagFileProcessor
from scheduler.executors.sequential import SequentialExecutor
from scheduler.scheduler import Scheduler
from tradewind.dags import set_paused
from tradewind.db import session_scope
from tradewind.models import DagRun, DagVersion
from tradewind.schedules import TimeRestriction, next_runs
from tradewind.serialization import SerializedDag
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

# Europe/Berlin leaves winter time on 2024-03-31 (02:00 CET becomes 03:00 CEST).
BERLIN = """
from datetime import datetime
from zoneinfo import ZoneInfo
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

berlin = ZoneInfo("Europe/Berlin")
with DAG("berlin", schedule="30 6 * * *", catchup=True,
         start_date=datetime(2024, 3, 28, tzinfo=berlin),
         end_date=datetime(2024, 4, 3, 12, tzinfo=berlin)):
    EmptyOperator(task_id="noop")
"""

ONCE = """
from datetime import datetime, timezone
from tradewind import DAG
from tradewind.operators.python import PythonOperator

with DAG("once", schedule="@once", start_date=datetime(2024, 3, 1, tzinfo=timezone.utc)):
    PythonOperator(task_id="work", python_callable=lambda: None)
"""

CONTINUOUS = """
from datetime import datetime, timezone
from tradewind import DAG
from tradewind.operators.python import PythonOperator

with DAG("continuous", schedule="@continuous", max_active_runs=1,
         start_date=datetime(2024, 3, 1, tzinfo=timezone.utc)):
    PythonOperator(task_id="work", python_callable=lambda: None)
"""


def deploy(
    folder: Path, factory: sessionmaker[Session], settings: Settings, name: str, source: str
) -> Scheduler:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    DagFileProcessor(factory, settings).process(now=datetime(2024, 3, 1, tzinfo=UTC))
    with session_scope(factory) as session:
        set_paused(session, [name], paused=False)
    return Scheduler(factory, settings, SequentialExecutor(settings))


def runs_of(factory: sessionmaker[Session], dag_id: str) -> list[DagRun]:
    with factory() as session:
        return list(
            session.scalars(
                select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after)
            )
        )


def listed(factory: sessionmaker[Session], dag_id: str, now: datetime, count: int) -> list:
    """What `tradewind dags next-execution` lists before any run exists."""
    with factory() as session:
        version = session.scalars(select(DagVersion).where(DagVersion.dag_id == dag_id)).one()
        dag = SerializedDag.from_dict(version.serialized)
    restriction = TimeRestriction(dag.start_date, dag.end_date, dag.catchup)
    return next_runs(dag.schedule, restriction, now=now, count=count)


def test_a_cron_in_a_time_zone_keeps_local_time_across_dst_and_stops_at_end_date(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    scheduler = deploy(dags_folder, session_factory, settings, "berlin", BERLIN)
    now = datetime(2024, 4, 20, tzinfo=UTC)
    expected = listed(session_factory, "berlin", now, count=20)
    for _ in range(12):
        scheduler.tick(now)
    runs = runs_of(session_factory, "berlin")
    assert [r.logical_date for r in runs] == [info.logical_date for info in expected]
    assert [(r.data_interval_start, r.data_interval_end) for r in runs] == [
        (info.data_interval.start, info.data_interval.end)  # type: ignore[union-attr]
        for info in expected
    ]
    # 06:30 in Berlin every day: 05:30 UTC in winter time, 04:30 UTC from March 31.
    assert [r.logical_date for r in runs] == [
        datetime(2024, 3, 28, 5, 30, tzinfo=UTC),
        datetime(2024, 3, 29, 5, 30, tzinfo=UTC),
        datetime(2024, 3, 30, 5, 30, tzinfo=UTC),
        datetime(2024, 3, 31, 4, 30, tzinfo=UTC),
        datetime(2024, 4, 1, 4, 30, tzinfo=UTC),
        datetime(2024, 4, 2, 4, 30, tzinfo=UTC),
        datetime(2024, 4, 3, 4, 30, tzinfo=UTC),  # 06:30 on the end date, before 12:00
    ]
    assert {r.state for r in runs} == {"success"}
    assert {r.run_type for r in runs} == {"scheduled"}


def test_once_runs_once(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    scheduler = deploy(dags_folder, session_factory, settings, "once", ONCE)
    now = datetime(2024, 3, 5, tzinfo=UTC)
    expected = listed(session_factory, "once", now, count=5)
    for day in range(5):
        scheduler.tick(now + timedelta(days=day))
    runs = runs_of(session_factory, "once")
    assert [r.logical_date for r in runs] == [info.logical_date for info in expected]
    assert [r.logical_date for r in runs] == [datetime(2024, 3, 1, tzinfo=UTC)]
    assert runs[0].state == "success"


def test_continuous_starts_the_next_run_when_the_last_one_ends(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    scheduler = deploy(dags_folder, session_factory, settings, "continuous", CONTINUOUS)
    start = datetime(2024, 3, 5, tzinfo=UTC)
    for second in range(8):
        scheduler.tick(start + timedelta(seconds=second))
    runs = runs_of(session_factory, "continuous")
    assert len(runs) >= 3
    assert all(r.state == "success" for r in runs[:-1])
    # One after another, each with a later logical date than the one before.
    for before, after in itertools.pairwise(runs):
        assert before.end_date is not None
        assert before.logical_date is not None
        assert after.logical_date is not None
        assert after.logical_date > before.logical_date
