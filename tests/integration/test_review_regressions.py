"""Behaviour a review found wrong once; each test pins the Airflow behaviour."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.dag_test import run_dag_test
from tradewind import DAG
from tradewind.errors import DagDefinitionError
from tradewind.models import LogChunk, TaskInstance, TaskInstanceHistory
from tradewind.settings import Settings

pytestmark = pytest.mark.integration


def run(
    folder: Path, settings: Settings, factory: sessionmaker[Session], name: str, body: str
) -> Any:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return run_dag_test(factory, settings, name, echo=None)


def log_of(factory: sessionmaker[Session], dag_id: str) -> str:
    with factory() as session:
        return "".join(session.scalars(select(LogChunk.content).where(LogChunk.dag_id == dag_id)))


def states(factory: sessionmaker[Session], dag_id: str) -> dict[str, str | None]:
    with factory() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id))
        return {
            (r.task_id if r.map_index < 0 else f"{r.task_id}[{r.map_index}]"): r.state for r in rows
        }


def test_each_try_renders_its_own_templates(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    result = run(
        dags_folder,
        settings,
        session_factory,
        "rerender",
        """
    from datetime import timedelta
    from tradewind import DAG
    from tradewind.operators.bash import BashOperator

    with DAG("rerender"):
        BashOperator(task_id="t", retries=1, retry_delay=timedelta(0),
                     bash_command="echo try={{ ti.try_number }}; test {{ ti.try_number }} -ge 2")
    """,
    )
    assert str(result.state) == "success"
    log = log_of(session_factory, "rerender")
    assert "try=1" in log
    assert "try=2" in log


def test_a_timeout_cannot_be_swallowed_by_the_task(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    result = run(
        dags_folder,
        settings,
        session_factory,
        "stubborn",
        """
    import time
    from datetime import timedelta
    from tradewind import DAG, task

    with DAG("stubborn"):
        @task(execution_timeout=timedelta(seconds=0.5))
        def loop():
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    time.sleep(0.05)
                except Exception:
                    pass
        loop()
    """,
    )
    assert str(result.state) == "failed"
    assert "execution_timeout" in log_of(session_factory, "stubborn")


def test_reschedules_do_not_use_up_tries(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    result = run(
        dags_folder,
        settings,
        session_factory,
        "poker",
        """
    from datetime import datetime, timedelta, timezone
    from pathlib import Path
    from tradewind import DAG, task
    from tradewind.errors import TaskReschedule

    COUNT = Path(__file__).with_name("pokes.txt")

    with DAG("poker"):
        @task(retries=1, retry_delay=timedelta(0))
        def sensor(ti):
            pokes = int(COUNT.read_text()) if COUNT.exists() else 0
            COUNT.write_text(str(pokes + 1))
            if pokes < 3:
                raise TaskReschedule(datetime.now(timezone.utc))
            if ti.try_number == 1:
                raise RuntimeError("a real failure after three pokes")
        sensor()
    """,
    )
    assert str(result.state) == "success"
    with session_factory() as session:
        ti = session.scalar(select(TaskInstance).where(TaskInstance.dag_id == "poker"))
        history = list(session.scalars(select(TaskInstanceHistory.try_number)))
    assert ti is not None
    assert ti.try_number == 2  # three reschedules, one failure, one retry
    assert history == [1]


def test_mapping_over_a_non_list_fails_the_producer(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    result = run(
        dags_folder,
        settings,
        session_factory,
        "badmap",
        """
    from tradewind import DAG, task

    with DAG("badmap"):
        @task
        def make():
            return 5

        @task
        def use(x):
            return x

        use.expand(x=make())
    """,
    )
    assert str(result.state) == "failed"
    assert states(session_factory, "badmap") == {"make": "failed", "use": "upstream_failed"}
    assert "must be a list or a dict, but it returned int" in log_of(session_factory, "badmap")


def test_mapped_over_mapped_keeps_each_element_in_place(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    result = run(
        dags_folder,
        settings,
        session_factory,
        "aligned",
        """
    from pathlib import Path
    from tradewind import DAG, task

    OUT = Path(__file__).with_name("seen.txt")

    with DAG("aligned"):
        @task
        def first(x):
            return None if x == 0 else x * 10

        @task
        def second(value, ti):
            with OUT.open("a") as f:
                f.write(f"{ti.map_index}={value}\\n")

        second.expand(value=first.expand(x=[0, 1, 2]))
    """,
    )
    assert str(result.state) == "success"
    seen = sorted((dags_folder / "seen.txt").read_text().split())
    assert seen == ["0=None", "1=10", "2=20"]


def test_depends_on_past_lets_the_first_run_through(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    result = run(
        dags_folder,
        settings,
        session_factory,
        "firstpast",
        """
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator
    from tradewind.operators.python import PythonOperator

    with DAG("firstpast"):
        PythonOperator(task_id="t", python_callable=lambda: None, depends_on_past=True,
                       ignore_first_depends_on_past=False)
    """,
    )
    assert str(result.state) == "success"


def test_continuous_dags_run_one_at_a_time() -> None:
    from datetime import datetime

    with DAG("c1", schedule="@continuous", start_date=datetime(2024, 1, 1)) as dag:
        pass
    assert dag.max_active_runs == 1
    with pytest.raises(DagDefinitionError, match="max_active_runs must be 1"):
        DAG("c2", schedule="@continuous", start_date=datetime(2024, 1, 1), max_active_runs=3)
