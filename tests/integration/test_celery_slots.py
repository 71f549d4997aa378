"""How many tries the Celery executor lets a pass queue (`CeleryExecutor.open_slots`).

The busy slots are counted in the database once per pass (a pass ends with `flush`), so
the pass that a try's end wakes sees that try's slot free."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.executors.celery import CeleryExecutor
from tests.conftest import fresh_database
from tests.integration.test_executor_contract import parse_and_unpause
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.db import session_scope
from tradewind.models import DagModel, TaskInstance
from tradewind.models.base import utcnow
from tradewind.settings import Settings, get_settings
from tradewind.state import DagRunType

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

TWO_TASKS = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

with DAG("pair"):
    EmptyOperator(task_id="a")
    EmptyOperator(task_id="b")
"""


@pytest.fixture
def db_url(request: pytest.FixtureRequest, home: Path) -> str:
    return fresh_database("postgres", request, home)


def set_state(factory: sessionmaker[Session], task_id: str, state: str) -> None:
    with session_scope(factory) as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id == task_id).values(state=state)
        )


def test_the_pass_after_a_try_ended_sees_its_slot_free(
    settings: Settings,
    dags_folder: Path,
    session_factory: sessionmaker[Session],
    redis_broker: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (dags_folder / "pair.py").write_text(TWO_TASKS)
    parse_and_unpause(session_factory, settings, "pair")
    with session_scope(session_factory) as session:
        now = utcnow()
        create_dag_run(
            session,
            session.get(DagModel, "pair"),  # type: ignore[arg-type]
            latest_version(session, "pair"),
            RunRequest(run_type=DagRunType.MANUAL, run_after=now, run_id="one"),
            now=now,
        )
    set_state(session_factory, "a", "running")
    monkeypatch.setenv("TRADEWIND_PARALLELISM", "1")
    monkeypatch.setenv("TRADEWIND_BROKER_URL", redis_broker)
    executor = CeleryExecutor(get_settings())
    executor.start()  # no worker is alive: the limit is parallelism

    assert executor.open_slots() == 0
    set_state(session_factory, "a", "success")
    assert executor.open_slots() == 0  # the same pass: one count
    executor.flush()  # the pass ends (with nothing to send)
    assert executor.open_slots() == 1
