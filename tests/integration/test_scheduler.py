"""The scheduler: runs created on time (controlled clock), and real daemon processes
running DAGs through the local executor, with faults injected."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.dag_processing.processor import DagFileProcessor
from scheduler.executors.sequential import SequentialExecutor
from scheduler.scheduler import Scheduler
from tests.integration.daemons import daemon_env, pid_alive, running, wait_for
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.dags import set_paused
from tradewind.db import session_scope
from tradewind.models import DagModel, DagRun, TaskInstance, TaskInstanceHistory
from tradewind.settings import Settings
from tradewind.state import DagRunType

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 1, tzinfo=UTC)


def write(folder: Path, name: str, source: str) -> None:
    (folder / name).write_text(textwrap.dedent(source))


def parse_and_unpause(factory: sessionmaker[Session], settings: Settings, *dag_ids: str) -> None:
    DagFileProcessor(factory, settings).process(now=START)
    with session_scope(factory) as session:
        set_paused(session, list(dag_ids), paused=False)


def runs_of(factory: sessionmaker[Session], dag_id: str) -> list[DagRun]:
    with factory() as session:
        return list(
            session.scalars(
                select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after)
            )
        )


def test_cron_runs_are_created_when_due_with_a_controlled_clock(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write(
        dags_folder,
        "hourly.py",
        """
    from datetime import datetime, timezone
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator

    with DAG("hourly", schedule="0 * * * *", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
             catchup=True, max_active_runs=5):
        EmptyOperator(task_id="noop")
    """,
    )
    parse_and_unpause(session_factory, settings, "hourly")
    scheduler = Scheduler(session_factory, settings, SequentialExecutor(settings))
    for minutes in (0, 59):
        scheduler.tick(START - timedelta(minutes=1) + timedelta(minutes=minutes))
    assert [r.logical_date for r in runs_of(session_factory, "hourly")] == [START]
    now = START + timedelta(hours=2, minutes=30)
    for _ in range(5):
        scheduler.tick(now)
    runs = runs_of(session_factory, "hourly")
    assert [r.logical_date for r in runs] == [START + timedelta(hours=h) for h in range(3)]
    assert {r.run_type for r in runs} == {"scheduled"}
    assert all(r.state == "success" for r in runs)


def test_paused_dags_get_no_runs_and_max_active_runs_holds(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write(
        dags_folder,
        "slowdaily.py",
        """
    from datetime import datetime, timezone
    from tradewind import DAG
    from tradewind.operators.python import PythonOperator

    with DAG("slowdaily", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
             catchup=True, max_active_runs=2):
        PythonOperator(task_id="work", python_callable=lambda: None)
    """,
    )
    DagFileProcessor(session_factory, settings).process(now=START)
    scheduler = Scheduler(session_factory, settings, _NeverRuns())
    later = START + timedelta(days=10)
    scheduler.tick(later)
    assert runs_of(session_factory, "slowdaily") == []  # new DAGs start paused
    with session_scope(session_factory) as session:
        set_paused(session, ["slowdaily"], paused=False)
    for _ in range(6):
        scheduler.tick(later)
    runs = runs_of(session_factory, "slowdaily")
    assert len(runs) == 2  # the executor never finishes them: no third run
    assert {r.state for r in runs} == {"running"}


def test_a_new_run_inserts_its_task_instances_in_one_short_statement_run_per_task(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Not one statement with a VALUES row per task: Postgres's driver parsed that anew
    for every run (7,400 parameters for 200 tasks)."""
    write(
        dags_folder,
        "fan.py",
        """
    from tradewind import DAG
    from tradewind.operators.python import PythonOperator

    with DAG("fan", schedule=None):
        for i in range(30):
            PythonOperator(
                task_id=f"t{i}", python_callable=print, pool_slots=1 + i % 3, retries=i % 2
            )
    """,
    )
    parse_and_unpause(session_factory, settings, "fan")
    engine = session_factory.kw["bind"]
    inserts: list[tuple[str, bool]] = []

    def seen(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO task_instance"):
            inserts.append((statement, bool(args[-1])))  # (the SQL, executemany)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(session_factory) as session:
            dag, version = session.get(DagModel, "fan"), latest_version(session, "fan")
            assert dag is not None
            request = RunRequest(run_type=DagRunType.MANUAL, run_after=START)
            run = create_dag_run(session, dag, version, request, now=START)
            run_id = run.run_id
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(inserts) == 1
    statement, executemany = inserts[0]
    assert executemany
    assert "), (" not in statement.partition(" VALUES ")[2]  # one row's values
    with session_scope(session_factory) as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id)).all()
        found = {ti.task_id: (ti.pool_slots, ti.max_tries, ti.try_number) for ti in rows}
        assert found == {f"t{i}": (1 + i % 3, i % 2, 0) for i in range(30)}
        assert len({ti.id for ti in rows}) == 30
        assert all(ti.state is None and ti.dag_version_id == version.id for ti in rows)


def test_the_scheduler_schedules_new_instances_with_one_update_and_loads_none(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """The first pass over a wide run: its ready instances were loaded as ORM rows and
    flushed one UPDATE each (56 ms for 200); an instance that has a state already (a
    retry due) still goes the ORM way, which archives its last try."""
    from scheduler.run_driver import advance_run

    write(
        dags_folder,
        "wide.py",
        """
    from tradewind import DAG
    from tradewind.operators.python import PythonOperator

    def work():
        pass

    with DAG("wide", schedule=None):
        for i in range(12):
            PythonOperator(task_id=f"t{i}", python_callable=work)
        first = PythonOperator(task_id="first", python_callable=work)
        first >> PythonOperator(task_id="late", python_callable=work)
    """,
    )
    parse_and_unpause(session_factory, settings, "wide")
    with session_scope(session_factory) as session:
        dag, version = session.get(DagModel, "wide"), latest_version(session, "wide")
        assert dag is not None
        request = RunRequest(run_type=DagRunType.MANUAL, run_after=START)
        created = create_dag_run(session, dag, version, request, now=START)
        run_pk, of_run = created.id, TaskInstance.run_id == created.run_id
    with session_scope(session_factory) as session:
        retried = session.scalars(
            select(TaskInstance).where(of_run, TaskInstance.task_id == "t0")
        ).one()
        retried.state, retried.try_number, retried.next_try_at = "up_for_retry", 1, START
    engine = session_factory.kw["bind"]
    statements: list[tuple[str, Any, bool]] = []

    def seen(_conn: object, _cursor: object, statement: str, params: Any, *args: object) -> None:
        if "task_instance" in statement.split(" WHERE ", maxsplit=1)[0]:
            statements.append((statement, params, bool(args[-1])))  # executemany last

    now = START + timedelta(minutes=1)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(session_factory) as session:
            run = session.get(DagRun, run_pk)
            assert run is not None
            step = advance_run(session, run, now=now, rows_of_scheduled=False)
            assert [ti.task_id for ti in step.scheduled] == ["t0"]  # the retry, as a row
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    fresh = [
        params
        for sql, params, many in statements
        if sql.startswith("UPDATE task_instance") and "state IS NULL" in sql and not many
    ]
    assert len(fresh) == 1
    values = fresh[0].values() if isinstance(fresh[0], dict) else fresh[0]
    with session_scope(session_factory) as session:
        ids = {ti.id: ti.task_id for ti in session.scalars(select(TaskInstance).where(of_run))}
    updated = sorted(ids[value] for value in values if value in ids)
    assert updated == sorted(["first", *(f"t{i}" for i in range(1, 12))])  # one statement
    loads = [params for sql, params, _ in statements if "task_instance.executor_config" in sql]
    assert [len(params) for params in loads] == [1]  # only the retried instance's row
    with session_scope(session_factory) as session:
        rows = session.scalars(select(TaskInstance).where(of_run)).all()
        states = {ti.task_id: (ti.state, ti.scheduled_dttm) for ti in rows}
        history = session.scalars(select(TaskInstanceHistory)).all()
    assert states.pop("late") == (None, None)  # waits for "first"
    assert states == dict.fromkeys(states, ("scheduled", now))
    assert [h.task_id for h in history] == ["t0"]  # its last try was archived


def test_a_queued_run_starts_in_the_pass_after_one_finished_without_a_full_pass(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Passes that follow up ended tries (``full=False``) look at queued runs after a
    pass that finished a run: that is what frees a ``max_active_runs`` slot."""
    write(
        dags_folder,
        "oneatatime.py",
        """
    from tradewind import DAG
    from tradewind.operators.python import PythonOperator

    with DAG("oneatatime", schedule=None, max_active_runs=1):
        a = PythonOperator(task_id="a", python_callable=lambda: None)
        a >> PythonOperator(task_id="b", python_callable=lambda: None)
    """,
    )
    parse_and_unpause(session_factory, settings, "oneatatime")
    with session_scope(session_factory) as session:
        dag, version = session.get(DagModel, "oneatatime"), latest_version(session, "oneatatime")
        assert dag is not None
        for day in range(3):
            request = RunRequest(DagRunType.MANUAL, run_after=START + timedelta(days=day))
            create_dag_run(session, dag, version, request, now=START)
    scheduler = Scheduler(session_factory, settings, SequentialExecutor(settings))
    now = START + timedelta(days=3)
    scheduler.tick(now, full=False)  # the scheduler's first look: starts the first run
    assert [r.state for r in runs_of(session_factory, "oneatatime")] == [
        "running",
        "queued",
        "queued",
    ]
    for _ in range(20):
        scheduler.tick(now, full=False)
    assert [r.state for r in runs_of(session_factory, "oneatatime")] == ["success"] * 3


class _NeverRuns(SequentialExecutor):
    """Accepts tries and never runs them (to hold runs open)."""

    def __init__(self) -> None:
        self._done = []

    def queue(self, request: object) -> None:
        return None


SIDE = """
from pathlib import Path
SIDE = Path({side!r})

def mark(line):
    with SIDE.open("a") as f:
        f.write(line + "\\n")
"""


@pytest.fixture
def side(tmp_path: Path) -> Path:
    return tmp_path / "executions.txt"


def test_scheduler_process_runs_example_shapes_with_the_local_executor(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
    tmp_path: Path,
) -> None:
    write(
        dags_folder,
        "shapes.py",
        SIDE.format(side=str(side))
        + """
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
    env = daemon_env(settings)
    with running(["scheduler"], env, tmp_path / "scheduler.log") as scheduler:
        with running(["dags", "trigger", "shapes"], env, tmp_path / "trigger.log") as trigger:
            trigger.process.wait(timeout=60)
        runs = wait_for(
            lambda: [
                r for r in runs_of(session_factory, "shapes") if r.state in ("success", "failed")
            ],
            "the shapes run to finish",
        )
    assert scheduler.process.returncode == 0, scheduler.output()
    assert runs[0].state == "failed"  # `slow` timed out
    with session_factory() as session:
        states = {
            (t.task_id, t.map_index): (t.state, t.try_number)
            for t in session.scalars(select(TaskInstance).where(TaskInstance.dag_id == "shapes"))
        }
        history = list(session.scalars(select(TaskInstanceHistory.task_id)))
    assert states[("fan.handle", 1)] == ("success", 2)
    assert states[("fan.join", -1)] == ("success", 1)
    assert states[("slow", -1)] == ("failed", 1)
    assert history == ["fan.handle"]
    lines = side.read_text().splitlines()
    assert sorted(lines) == sorted(
        ["handle a try 1", "handle b try 1", "handle b try 2", "handle c try 1", "join A,B,C"]
    )


def test_a_killed_task_process_is_retried_and_the_run_succeeds(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    write(
        dags_folder,
        "victim.py",
        SIDE.format(side=str(side))
        + f"""
import os, time
from datetime import timedelta
from tradewind import DAG, task

with DAG("victim"):
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def long_task(ti):
        mark(f"try {{ti.try_number}}")
        if ti.try_number == 1:
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(60)
        return "survived"

    long_task()
""",
    )
    parse_and_unpause(session_factory, settings, "victim")
    env = daemon_env(settings)
    with running(["scheduler", "--no-dag-processor"], env, tmp_path / "scheduler.log"):
        with running(["dags", "trigger", "victim"], env, tmp_path / "trigger.log") as trigger:
            trigger.process.wait(timeout=60)
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the task's pid"))
        import os
        import signal

        os.kill(pid, signal.SIGKILL)
        runs = wait_for(
            lambda: [r for r in runs_of(session_factory, "victim") if r.state == "success"],
            "the run to succeed after the retry",
        )
    assert runs
    assert side.read_text().splitlines() == ["try 1", "try 2"]
    assert not pid_alive(pid)


def test_a_killed_scheduler_is_replaced_and_no_try_runs_twice(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
    tmp_path: Path,
) -> None:
    write(
        dags_folder,
        "steady.py",
        SIDE.format(side=str(side))
        + """
import time
from tradewind import DAG, chain
from tradewind.operators.python import PythonOperator

def step(ti):
    mark(f"{ti.task_id} {ti.try_number}")
    time.sleep(0.3)

with DAG("steady"):
    chain(*[PythonOperator(task_id=f"t{i:02d}", python_callable=step) for i in range(12)])
""",
    )
    parse_and_unpause(session_factory, settings, "steady")
    env = daemon_env(settings)
    with running(["dags", "trigger", "steady"], env, tmp_path / "trigger.log") as trigger:
        trigger.process.wait(timeout=60)
    with running(["scheduler", "--no-dag-processor"], env, tmp_path / "first.log") as first:
        wait_for(lambda: side.exists() and len(side.read_text().splitlines()) >= 4, "a few tasks")
        first.kill()
    with running(["scheduler", "--no-dag-processor"], env, tmp_path / "second.log"):
        wait_for(
            lambda: [r for r in runs_of(session_factory, "steady") if r.state == "success"],
            "the run to finish under the second scheduler",
        )
    lines = side.read_text().splitlines()
    assert sorted(lines) == [f"t{i:02d} 1" for i in range(12)]  # each try exactly once


def test_a_second_scheduler_on_sqlite_is_refused(
    home: Path, dags_folder: Path, tmp_path: Path
) -> None:
    from tradewind.settings import get_settings

    settings = get_settings(database_url=f"sqlite:///{home / 'single.db'}")
    env = daemon_env(settings)
    with running(["scheduler", "--no-dag-processor"], env, tmp_path / "first.log") as first:
        wait_for(lambda: "Scheduler started" in first.output(), "the first scheduler")
        with running(["scheduler", "--no-dag-processor"], env, tmp_path / "second.log") as second:
            second.process.wait(timeout=60)
            assert second.process.returncode == 1
            assert "SQLite supports one scheduler at a time" in second.output()


def test_two_schedulers_on_postgres_run_every_try_exactly_once(
    pg_database: str, home: Path, dags_folder: Path, tmp_path: Path, side: Path
) -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import truncate_all
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import make_session_factory
    from tradewind.models import DagModel
    from tradewind.models.base import utcnow
    from tradewind.settings import get_settings
    from tradewind.state import DagRunType

    engine = create_engine(pg_database)
    truncate_all(engine)
    settings = get_settings(database_url=pg_database)
    factory = make_session_factory(engine)
    write(
        dags_folder,
        "many.py",
        SIDE.format(side=str(side))
        + """
from tradewind import DAG, chain
from tradewind.operators.python import PythonOperator

def work(ti):
    mark(f"{ti.run_id} {ti.task_id} {ti.try_number}")

with DAG("many", max_active_runs=20, max_active_tasks=100):
    tasks = [PythonOperator(task_id=f"t{i:02d}", python_callable=work) for i in range(25)]
    chain(tasks[0], tasks[1:24], tasks[24])
""",
    )
    parse_and_unpause(factory, settings, "many")
    with session_scope(factory) as session:
        model = session.get(DagModel, "many")
        version = latest_version(session, "many")
        for i in range(20):
            create_dag_run(
                session,
                model,
                version,  # type: ignore[arg-type]
                RunRequest(run_type=DagRunType.MANUAL, run_after=utcnow(), run_id=f"run_{i:02d}"),
                now=utcnow(),
            )
    env = daemon_env(settings, TRADEWIND_PARALLELISM="6")
    with (
        running(["scheduler", "--no-dag-processor"], env, tmp_path / "a.log") as first,
        running(["scheduler", "--no-dag-processor"], env, tmp_path / "b.log") as second,
    ):

        def all_done() -> bool:
            with engine.connect() as conn:
                left = conn.execute(
                    text("SELECT count(*) FROM dag_run WHERE state NOT IN ('success', 'failed')")
                ).scalar()
            return left == 0

        wait_for(all_done, "all 20 runs to finish", timeout=240)
    assert first.process.returncode == 0
    assert second.process.returncode == 0
    with engine.connect() as conn:
        states = conn.execute(text("SELECT state, count(*) FROM dag_run GROUP BY state")).all()
        hosts = conn.execute(
            text("SELECT count(DISTINCT pid) FROM job WHERE job_type = 'scheduler'")
        ).scalar()
    assert dict(states) == {"success": 20}
    assert hosts == 2
    lines = side.read_text().splitlines()
    assert len(lines) == 500
    assert len(set(lines)) == 500  # no try executed twice
    assert all(line.endswith(" 1") for line in lines)
    engine.dispose()


def test_a_run_finishes_on_the_dag_version_it_started_with(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    source = (
        SIDE.format(side=str(side))
        + f"""
import os, time
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def first():
    while not os.path.exists({str(gate)!r}):
        time.sleep(0.1)
    mark("first")

def second():
    mark("second")

with DAG("evolving"):
    PythonOperator(task_id="first", python_callable=first) >> PythonOperator(
        task_id="second", python_callable=second)
"""
    )
    write(dags_folder, "evolving.py", source)
    parse_and_unpause(session_factory, settings, "evolving")
    env = daemon_env(settings)
    with running(["scheduler"], env, tmp_path / "scheduler.log"):
        with running(["dags", "trigger", "evolving"], env, tmp_path / "trigger.log") as trigger:
            trigger.process.wait(timeout=60)

        def first_running() -> bool:
            with session_factory() as session:
                state = session.scalar(
                    select(TaskInstance.state).where(TaskInstance.task_id == "first")
                )
            return state == "running"

        wait_for(first_running, "the first task to start")
        # Edit the DAG mid-run: a third task appears and `second` is gone.
        edited = source.replace(
            'PythonOperator(task_id="first", python_callable=first) >> PythonOperator(\n'
            '        task_id="second", python_callable=second)',
            'PythonOperator(task_id="first", python_callable=first) >> PythonOperator(\n'
            '        task_id="third", python_callable=second)',
        )
        assert edited != source
        (dags_folder / "evolving.py").write_text(edited)

        def new_version() -> bool:
            from tradewind.models import DagVersion

            with session_factory() as s:
                return (
                    len(list(s.scalars(select(DagVersion).where(DagVersion.dag_id == "evolving"))))
                    == 2
                )

        wait_for(new_version, "the edited DAG to be parsed")
        gate.write_text("go")
        runs = wait_for(
            lambda: [r for r in runs_of(session_factory, "evolving") if r.state == "success"],
            "the run to finish",
        )
    with session_factory() as session:
        tasks = set(
            session.scalars(
                select(TaskInstance.task_id).where(TaskInstance.run_id == runs[0].run_id)
            )
        )
    assert tasks == {"first", "second"}
    assert side.read_text().splitlines() == ["first", "second"]


EXAMPLES = ("ml_training_pipeline", "segment_training", "partition_features", "bash_and_templates")


def test_the_example_dags_run_green_through_the_scheduler(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tradewind.settings import get_settings

    examples = Path(__file__).resolve().parents[2] / "dags"
    monkeypatch.setenv("TRADEWIND_DAGS_FOLDER", str(examples))
    settings = get_settings()
    parse_and_unpause(session_factory, settings, *EXAMPLES)
    env = daemon_env(settings)
    with running(["scheduler", "--no-dag-processor"], env, tmp_path / "scheduler.log") as daemon:
        for dag_id in EXAMPLES:
            with running(
                ["dags", "trigger", dag_id, "-r", "example"], env, tmp_path / f"{dag_id}.log"
            ) as t:
                t.process.wait(timeout=60)

        def finished() -> list[DagRun]:
            with session_factory() as session:
                runs = list(session.scalars(select(DagRun).where(DagRun.run_id == "example")))
            return runs if all(r.state in ("success", "failed") for r in runs) else []

        runs = wait_for(finished, "the four example runs", timeout=180)
    assert daemon.process.returncode == 0
    assert {r.dag_id: r.state for r in runs} == dict.fromkeys(EXAMPLES, "success")


def test_a_retry_waits_for_its_delay(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    write(
        dags_folder,
        "patient.py",
        """
    from datetime import timedelta
    from tradewind import DAG, task

    with DAG("patient"):
        @task(retries=2, retry_delay=timedelta(seconds=1), retry_exponential_backoff=True,
              max_retry_delay=timedelta(seconds=3))
        def flaky(ti):
            if ti.try_number < 3:
                raise RuntimeError("not yet")

        flaky()
    """,
    )
    parse_and_unpause(session_factory, settings, "patient")
    env = daemon_env(settings)
    with running(["scheduler", "--no-dag-processor"], env, tmp_path / "scheduler.log"):
        with running(["dags", "trigger", "patient"], env, tmp_path / "trigger.log") as trigger:
            trigger.process.wait(timeout=60)
        wait_for(
            lambda: [r for r in runs_of(session_factory, "patient") if r.state == "success"],
            "the run to succeed on its third try",
        )
    with session_factory() as session:
        earlier = list(
            session.scalars(select(TaskInstanceHistory).order_by(TaskInstanceHistory.try_number))
        )
        last = session.scalar(select(TaskInstance).where(TaskInstance.dag_id == "patient"))
    assert last is not None
    assert [(h.try_number, h.state) for h in earlier] == [(1, "up_for_retry"), (2, "up_for_retry")]
    starts = [h.start_date for h in earlier] + [last.start_date]
    ends = [h.end_date for h in earlier]
    # Recorded times: each try started no earlier than the back-off after the previous end
    # (1 s, then 2 s stretched by jitter up to 3 s).
    assert starts[1] - ends[0] >= timedelta(seconds=1)
    assert starts[2] - ends[1] >= timedelta(seconds=2)
