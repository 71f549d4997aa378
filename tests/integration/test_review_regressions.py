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


def test_a_file_the_database_cannot_hold_is_an_import_error_not_an_outage(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from scheduler.dag_processing.processor import DagFileProcessor
    from tradewind.models import DagModel, ParseImportError
    from tradewind.models.base import utcnow

    (dags_folder / "longtag.py").write_text(
        "from tradewind import DAG\nDAG('t', tags=['x' * 150])\n"
    )
    (dags_folder / "longid.py").write_text(
        textwrap.dedent("""
    from tradewind import DAG, TaskGroup
    from tradewind.operators.empty import EmptyOperator
    with DAG("ids"):
        with TaskGroup("g" * 120):
            EmptyOperator(task_id="t" * 200)
    """)
    )
    (dags_folder / "fine.py").write_text("from tradewind import DAG\nDAG('fine')\n")
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_factory() as session:
        errors = {e.filename: e.message for e in session.scalars(select(ParseImportError))}
        assert session.get(DagModel, "fine") is not None
    assert "tags must be strings of 1 to 100 characters" in errors["longtag.py"]
    assert "task_id (with its group prefix)" in errors["longid.py"]


def test_tasks_test_leaves_nothing_for_a_scheduler_to_run(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from scheduler.executors.sequential import SequentialExecutor
    from scheduler.scheduler import Scheduler
    from scheduler.task_test import run_task_test
    from tradewind.dags import set_paused
    from tradewind.db import session_scope
    from tradewind.models import DagRun
    from tradewind.models.base import utcnow

    (dags_folder / "pair.py").write_text(
        textwrap.dedent("""
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator
    from tradewind.operators.python import PythonOperator
    with DAG("pair"):
        PythonOperator(task_id="a", python_callable=lambda: None) >> PythonOperator(
            task_id="b", python_callable=lambda: None)
    """)
    )
    assert run_task_test(session_factory, settings, "pair", "a") == "success"
    with session_scope(session_factory) as session:
        set_paused(session, ["pair"], paused=False)
    Scheduler(session_factory, settings, SequentialExecutor(settings)).tick(utcnow())
    assert states(session_factory, "pair") == {"a": "success", "b": None}
    with session_factory() as session:
        run = session.scalar(select(DagRun))
        assert run is not None
        assert (run.state, run.note) == ("success", "tasks test of a: only that task ran")


def test_fail_fast_skips_what_has_not_started(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    result = run(
        dags_folder,
        settings,
        session_factory,
        "fastfail",
        """
    from tradewind import DAG, chain
    from tradewind.operators.bash import BashOperator

    with DAG("fastfail", fail_fast=True):
        BashOperator(task_id="boom", bash_command="exit 1")
        chain(BashOperator(task_id="a", bash_command="sleep 0.3"),
              BashOperator(task_id="b", bash_command="true"))
    """,
    )
    assert str(result.state) == "failed"
    got = states(session_factory, "fastfail")
    assert got["boom"] == "failed"
    assert got["b"] == "skipped"


def test_run_ids_are_validated(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import session_scope
    from tradewind.errors import DagRunIdError
    from tradewind.models import DagModel
    from tradewind.models.base import utcnow
    from tradewind.state import DagRunType

    run(
        dags_folder,
        settings,
        session_factory,
        "named",
        """
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator
    with DAG("named"):
        EmptyOperator(task_id="a")
    """,
    )
    for bad in ("../../escape", "x" * 300, "has space"):
        with (
            session_scope(session_factory) as session,
            pytest.raises(DagRunIdError, match="not allowed"),
        ):
            create_dag_run(
                session,
                session.get(DagModel, "named"),
                latest_version(session, "named"),  # type: ignore[arg-type]
                RunRequest(run_type=DagRunType.MANUAL, run_after=utcnow(), run_id=bad),
                now=utcnow(),
            )


def test_dag_files_can_import_helpers_from_the_dag_folder(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    (dags_folder / "common").mkdir()
    (dags_folder / "common" / "__init__.py").write_text("")
    (dags_folder / "common" / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    result = run(
        dags_folder,
        settings,
        session_factory,
        "helped",
        """
    from tradewind import DAG, task
    from common.helpers import double

    with DAG("helped"):
        @task
        def go():
            return double(21)
        go()
    """,
    )
    assert str(result.state) == "success"


def test_a_newer_database_is_refused_with_a_reason(settings: Settings, engine: Any) -> None:
    from sqlalchemy import text

    from tradewind.db import check_schema, current_revision
    from tradewind.errors import DatabaseError

    real = current_revision(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        with pytest.raises(DatabaseError, match="migrated by a newer Tradewind"):
            check_schema(engine)
    finally:  # the Postgres database is shared by the whole test session
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": real})
