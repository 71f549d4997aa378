"""Which scheduled instances a pass queues (`scheduler.queueing.pick_for_queue`): within a
DAG's ``max_active_tasks`` and a task's ``max_active_tis_per_dag``, counted from the
instances already queued or running, on SQLite and Postgres."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_scheduler import parse_and_unpause
from tradewind.models import TaskInstance
from tradewind.settings import Settings

SOURCE = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

with DAG("limited", max_active_tasks=3, max_active_runs=5):
    for name in ("a", "b", "c", "d", "e"):
        EmptyOperator(task_id=name)
    EmptyOperator(task_id="single", max_active_tis_per_dag=1)

with DAG("other"):
    EmptyOperator(task_id="free")
"""


def runs_in_states(factory: sessionmaker[Session], dag_id: str, *states: dict[str, str]) -> None:
    """One run of ``dag_id`` per mapping, its instances set to the states it names (the
    others left without a state)."""
    from scheduler.run_creation import start_queued_runs
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import session_scope
    from tradewind.models import DagModel
    from tradewind.models.base import utcnow
    from tradewind.state import DagRunType

    for number, wanted in enumerate(states):
        with session_scope(factory) as session:
            model = session.get(DagModel, dag_id)
            assert model is not None
            run = create_dag_run(
                session,
                model,
                latest_version(session, dag_id),
                RunRequest(run_type=DagRunType.MANUAL, run_after=utcnow(), run_id=f"r{number}"),
                now=utcnow(),
            )
            start_queued_runs(session, utcnow())
            query = select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id
            )
            for ti in session.scalars(query):
                if ti.task_id in wanted:
                    ti.state = wanted[ti.task_id]
                    ti.scheduled_dttm = utcnow()


def picked(factory: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    from scheduler.queueing import pick_for_queue
    from tradewind.db import session_scope
    from tradewind.models.base import utcnow

    with session_scope(factory) as session:
        tis = pick_for_queue(session, slots=16, now=utcnow())
        return sorted((ti.dag_id, ti.run_id, ti.task_id) for ti in tis)


def test_a_dag_runs_at_most_max_active_tasks_and_leaves_other_dags_alone(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    (dags_folder / "limited.py").write_text(textwrap.dedent(SOURCE))
    parse_and_unpause(session_factory, settings, "limited", "other")
    runs_in_states(
        session_factory,
        "limited",
        {"a": "running", "b": "queued", "c": "scheduled", "d": "scheduled"},
        {"a": "scheduled", "b": "scheduled"},
    )
    runs_in_states(session_factory, "other", {"free": "scheduled"})
    chosen = picked(session_factory)
    # Two of "limited"'s three are taken: one more of its four waiting instances starts.
    assert len([key for key in chosen if key[0] == "limited"]) == 1
    assert ("other", "r0", "free") in chosen


def test_a_task_runs_at_most_max_active_tis_per_dag_across_runs(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    (dags_folder / "limited.py").write_text(textwrap.dedent(SOURCE))
    parse_and_unpause(session_factory, settings, "limited")
    runs_in_states(
        session_factory,
        "limited",
        {"single": "running"},
        {"single": "scheduled", "a": "scheduled"},
    )
    assert picked(session_factory) == [("limited", "r1", "a")]
