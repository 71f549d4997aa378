"""Deferrable tasks through real processes (a scheduler with the local executor and one or
two `tradewind triggerer`s), on SQLite and Postgres: a deferred sensor holds no slot while
it waits, resumes in the same try when its trigger fires, times out as a sensor does; 500
deferred sensors sit in one triggerer while the worker pool stays free; a triggerer
killed with -9 hands its triggers to another."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.daemons import Daemon, daemon_env, running, wait_for
from tests.integration.test_scheduler import parse_and_unpause
from tests.integration.test_sensors import DAY, instances, run_state, trigger
from tradewind.models import Job, LogChunk, TaskInstance, Trigger, XCom
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

LANDING = """
from datetime import timedelta
from tradewind import DAG, task
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sensors.filesystem import FileSensor
from tradewind.triggers.temporal import TimeDeltaTrigger

SIDE = {side!r}

def mark(line):
    with open(SIDE, "a") as side:
        side.write(line + "\\n")


class Nap(BaseOperator):
    def execute(self, context):
        mark("nap started")
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=1)), method_name="woke",
                   kwargs={{"note": "from before"}})

    def woke(self, context, event=None, note=None):
        mark("nap woke")
        return {{"note": note, "fired_at": event.isoformat()}}


with DAG("landing"):
    wait = FileSensor(task_id="wait_for_file", filepath={landing!r} + "/{{{{ ds }}}}/*.csv",
                      deferrable=True, poke_interval=0.2, timeout=300, priority_weight=10)

    @task
    def load():
        mark("load")

    @task(priority_weight=1)
    def busy():
        mark("busy")

    wait >> load()
    busy()
    Nap(task_id="nap")
"""

PATIENT = """
from tradewind import DAG
from tradewind.sensors.filesystem import FileSensor

with DAG("patient"):
    FileSensor(task_id="never", filepath="/nonexistent/tradewind/file", deferrable=True,
               poke_interval=0.2, timeout=2, retries=2)
    FileSensor(task_id="never_soft", filepath="/nonexistent/tradewind/file",
               deferrable=True, poke_interval=0.2, timeout=2, soft_fail=True)
"""

BROKEN_TRIGGER = """
from tradewind import DAG
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.triggers.base import BaseTrigger


class Explodes(BaseTrigger):
    def serialize(self):
        return ("tradewind_test_missing.Explodes", {{}})

    async def run(self):
        yield None


class Waits(BaseOperator):
    def execute(self, context):
        self.defer(trigger=Explodes(), method_name="done")

    def done(self, context, event=None):
        return "never"


with DAG("broken_trigger"):
    Waits(task_id="waits")
"""

MANY = """
from tradewind import DAG
from tradewind.sensors.filesystem import FileSensor

with DAG("many"):
    for i in range({count}):
        FileSensor(task_id=f"wait_{{i}}", filepath={flag!r}, deferrable=True,
                   poke_interval=0.5, timeout=3600)
"""

PROBE = """
from tradewind import DAG, task

with DAG("probe"):
    @task
    def probe():
        return "ran"

    probe()
"""

EXTERNAL = """
from tradewind import DAG, task
from tradewind.sensors.external_task import ExternalTaskSensor

with DAG("consumer"):
    wait = ExternalTaskSensor(task_id="wait_for_producer", external_dag_id="producer",
                              deferrable=True, poke_interval=0.2, timeout=120)

    @task
    def consume():
        return "consumed"

    wait >> consume()
"""


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    # One slot: a deferred task that held it would starve every other task.
    return daemon_env(
        settings,
        TRADEWIND_PARALLELISM="1",
        TRADEWIND_JOB_HEARTBEAT_SECONDS="0.5",
        TRADEWIND_JOB_DEAD_AFTER_SECONDS="3",
    )


@pytest.fixture
def scheduler(env: dict[str, str], tmp_path: Path) -> Iterator[Daemon]:
    with running(["scheduler"], env, tmp_path / "scheduler.log") as daemon:
        yield daemon


@pytest.fixture
def triggerer(env: dict[str, str], tmp_path: Path) -> Iterator[Daemon]:
    with running(["triggerer"], env, tmp_path / "triggerer.log") as daemon:
        yield daemon


def triggers(factory: sessionmaker[Session]) -> list[Trigger]:
    with factory() as session:
        return list(session.scalars(select(Trigger)))


def count_in_state(factory: sessionmaker[Session], dag_id: str, state: str) -> int:
    with factory() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.state == state
                )
            )
            or 0
        )


def triggerer_job(factory: sessionmaker[Session], pid: int) -> int | None:
    with factory() as session:
        return session.scalar(
            select(Job.id).where(
                Job.job_type == "triggerer", Job.pid == pid, Job.state == "running"
            )
        )


def test_a_deferred_sensor_frees_its_slot_and_resumes_in_the_same_try(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    triggerer: Daemon,
    tmp_path: Path,
) -> None:
    side, landing = tmp_path / "side.txt", tmp_path / "landing"
    source = LANDING.format(side=str(side), landing=str(landing))
    (dags_folder / "landing.py").write_text(textwrap.dedent(source))
    parse_and_unpause(session_factory, settings, "landing")
    trigger(settings, tmp_path, "landing", "--logical-date", DAY)

    # With its one slot, `busy` and `nap` run only because the sensor waits deferred.
    wait_for(lambda: side.exists() and "nap woke" in side.read_text(), "the nap to resume")
    assert "busy" in side.read_text()
    sensor = instances(session_factory, "landing")["wait_for_file"]
    assert (sensor.state, sensor.trigger_id is not None) == ("deferred", True)
    assert sensor.next_method == "execute_complete"
    (stored,) = triggers(session_factory)
    assert stored.classpath == "tradewind.triggers.file.FileTrigger"
    assert stored.kwargs["filepath"] == f"{landing}/2026-03-01/*.csv"

    (landing / "2026-03-01").mkdir(parents=True)
    (landing / "2026-03-01" / "orders.csv").write_text("id\n1\n")
    wait_for(lambda: run_state(session_factory, "landing") == "success", "the run to succeed")
    tis = instances(session_factory, "landing")
    # A deferral and its resumption are one try.
    assert {k: (v.state, v.try_number) for k, v in tis.items()} == {
        "wait_for_file": ("success", 1),
        "load": ("success", 1),
        "busy": ("success", 1),
        "nap": ("success", 1),
    }
    assert all(v.next_method is None and v.trigger_id is None for v in tis.values())
    assert side.read_text().splitlines().index("load") > side.read_text().splitlines().index("busy")
    assert triggers(session_factory) == []
    with session_factory() as session:
        value = session.scalar(
            select(XCom.value).where(
                XCom.dag_id == "landing", XCom.task_id == "nap", XCom.key == "return_value"
            )
        )
    assert value["note"] == "from before"
    assert value["fired_at"].startswith("20")


def test_deferrals_time_out_as_sensors_and_broken_triggers_fail_the_task(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    triggerer: Daemon,
    tmp_path: Path,
) -> None:
    (dags_folder / "patient.py").write_text(textwrap.dedent(PATIENT))
    (dags_folder / "broken_trigger.py").write_text(textwrap.dedent(BROKEN_TRIGGER.format()))
    parse_and_unpause(session_factory, settings, "patient", "broken_trigger")
    trigger(settings, tmp_path, "patient")
    trigger(settings, tmp_path, "broken_trigger")
    wait_for(lambda: run_state(session_factory, "patient") == "failed", "the sensor to time out")
    tis = instances(session_factory, "patient")
    # Failed at its first try although retries were left, as a sensor's timeout does.
    assert (tis["never"].state, tis["never"].try_number) == ("failed", 1)
    assert tis["never_soft"].state == "skipped"

    wait_for(
        lambda: run_state(session_factory, "broken_trigger") == "failed",
        "the task of the broken trigger to fail",
    )
    (waits,) = instances(session_factory, "broken_trigger").values()
    assert (waits.state, waits.try_number) == ("failed", 1)
    assert "cannot import trigger class 'tradewind_test_missing.Explodes'" in log_of(
        session_factory, waits
    )


def log_of(factory: sessionmaker[Session], ti: TaskInstance) -> str:
    with factory() as session:
        chunks = session.scalars(
            select(LogChunk.content)
            .where(LogChunk.dag_id == ti.dag_id, LogChunk.task_id == ti.task_id)
            .order_by(LogChunk.id)
        )
        return "".join(chunks)


def test_an_external_task_sensor_defers_until_the_other_run_succeeds(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    triggerer: Daemon,
    tmp_path: Path,
) -> None:
    (dags_folder / "producer.py").write_text(
        textwrap.dedent(PROBE).replace('"probe"', '"producer"')
    )
    (dags_folder / "consumer.py").write_text(textwrap.dedent(EXTERNAL))
    parse_and_unpause(session_factory, settings, "producer", "consumer")
    trigger(settings, tmp_path, "consumer", "--logical-date", DAY)
    wait_for(
        lambda: instances(session_factory, "consumer")["wait_for_producer"].state == "deferred",
        "the sensor to defer",
    )
    trigger(settings, tmp_path, "producer", "--logical-date", DAY)
    wait_for(lambda: run_state(session_factory, "consumer") == "success", "the consumer run")
    sensor = instances(session_factory, "consumer")["wait_for_producer"]
    assert sensor.try_number == 1


def test_one_triggerer_holds_500_deferred_sensors_while_the_pool_stays_free(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    flag = tmp_path / "go"
    (dags_folder / "many.py").write_text(textwrap.dedent(MANY.format(count=500, flag=str(flag))))
    (dags_folder / "probe.py").write_text(textwrap.dedent(PROBE))
    parse_and_unpause(session_factory, settings, "many", "probe")
    env = daemon_env(settings, TRADEWIND_PARALLELISM="4")
    with (
        running(["scheduler"], env, tmp_path / "scheduler.log"),
        running(["triggerer"], env, tmp_path / "triggerer.log") as triggerer,
    ):
        trigger(settings, tmp_path, "many", "--logical-date", DAY)
        wait_for(
            lambda: count_in_state(session_factory, "many", "deferred") == 500,
            "all 500 sensors to defer",
            timeout=300,
        )
        job = wait_for(lambda: triggerer_job(session_factory, triggerer.pid), "the job")
        wait_for(
            lambda: sum(t.triggerer_id == job for t in triggers(session_factory)) == 500,
            "the triggerer to hold all 500",
        )
        # Every worker slot is free: another DAG's task runs at once.
        trigger(settings, tmp_path, "probe", "--logical-date", DAY)
        wait_for(lambda: run_state(session_factory, "probe") == "success", "the probe to run")
        assert count_in_state(session_factory, "many", "deferred") == 500

        flag.write_text("go")
        wait_for(
            lambda: run_state(session_factory, "many") == "success",
            "all 500 to resume",
            timeout=300,
        )
    with session_factory() as session:
        tries = set(
            session.scalars(select(TaskInstance.try_number).where(TaskInstance.dag_id == "many"))
        )
    assert tries == {1}
    assert triggers(session_factory) == []


def test_a_killed_triggerer_hands_its_triggers_to_another(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    env: dict[str, str],
    scheduler: Daemon,
    tmp_path: Path,
) -> None:
    flag = tmp_path / "go"
    (dags_folder / "many.py").write_text(textwrap.dedent(MANY.format(count=20, flag=str(flag))))
    parse_and_unpause(session_factory, settings, "many")
    with running(["triggerer"], env, tmp_path / "first.log") as first:
        trigger(settings, tmp_path, "many", "--logical-date", DAY)
        first_job = wait_for(lambda: triggerer_job(session_factory, first.pid), "the first job")
        wait_for(
            lambda: sum(t.triggerer_id == first_job for t in triggers(session_factory)) == 20,
            "the first triggerer to hold all 20",
            timeout=180,
        )
        with running(["triggerer"], env, tmp_path / "second.log") as second:
            second_job = wait_for(
                lambda: triggerer_job(session_factory, second.pid), "the second job"
            )
            # The second leaves the first's triggers alone while the first is alive.
            assert not any(t.triggerer_id == second_job for t in triggers(session_factory))
            first.kill()
            wait_for(
                lambda: all(t.triggerer_id == second_job for t in triggers(session_factory)),
                "the second triggerer to take over",
            )
            flag.write_text("go")
            wait_for(lambda: run_state(session_factory, "many") == "success", "the run")
    assert count_in_state(session_factory, "many", "success") == 20


@pytest.mark.parametrize("include_deferred", [False, True])
def test_a_pool_counts_deferred_tasks_only_with_include_deferred(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    include_deferred: bool,
) -> None:
    from scheduler.queueing import pick_for_queue
    from scheduler.run_creation import start_queued_runs
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import session_scope
    from tradewind.models import DagModel, Pool
    from tradewind.models.base import utcnow
    from tradewind.state import DagRunType

    source = """
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator
    from tradewind.sdk.baseoperator import BaseOperator

    class Work(BaseOperator):
        def execute(self, context):
            pass

    with DAG("pooled"):
        Work(task_id="waiting", pool="narrow")
        Work(task_id="ready", pool="narrow")
    """
    (dags_folder / "pooled.py").write_text(textwrap.dedent(source))
    parse_and_unpause(session_factory, settings, "pooled")
    with session_scope(session_factory) as session:
        session.add(Pool(pool="narrow", slots=1, include_deferred=include_deferred))
        model = session.get(DagModel, "pooled")
        assert model is not None
        run = create_dag_run(
            session,
            model,
            latest_version(session, "pooled"),
            RunRequest(run_type=DagRunType.MANUAL, run_after=utcnow(), logical_date=utcnow()),
            now=utcnow(),
        )
        start_queued_runs(session, utcnow())
        for ti in session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)):
            ti.state = "deferred" if ti.task_id == "waiting" else "scheduled"
            ti.scheduled_dttm = utcnow()
    with session_scope(session_factory) as session:
        picked = [ti.task_id for ti in pick_for_queue(session, slots=4, now=utcnow())]
    assert picked == ([] if include_deferred else ["ready"])


MAPPED = """
from tradewind import DAG
from tradewind.sensors.filesystem import FileSensor

with DAG("mapped_waits"):
    FileSensor.partial(task_id="wait", deferrable=True, poke_interval=0.2, timeout=300).expand(
        filepath=[{first!r}, {second!r}]
    )
"""


def test_mapped_sensors_defer_and_resume_one_by_one(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    triggerer: Daemon,
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    source = MAPPED.format(first=str(first), second=str(second))
    (dags_folder / "mapped_waits.py").write_text(textwrap.dedent(source))
    parse_and_unpause(session_factory, settings, "mapped_waits")
    trigger(settings, tmp_path, "mapped_waits")

    def states() -> dict[int, str | None]:
        with session_factory() as session:
            rows = session.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == "mapped_waits")
            ).all()
            return {row.map_index: row.state for row in rows}

    wait_for(lambda: states() == {0: "deferred", 1: "deferred"}, "both instances to defer")
    first.write_text("a\n")
    wait_for(lambda: states() == {0: "success", 1: "deferred"}, "the first to resume")
    second.write_text("b\n")
    wait_for(lambda: run_state(session_factory, "mapped_waits") == "success", "the run")
    assert len(triggers(session_factory)) == 0


# --- standalone's triggerer, started and stopped on demand ------------------------------


def test_standalone_starts_its_triggerer_for_a_waiting_trigger_and_stops_it_when_idle(
    session_factory: sessionmaker[Session],
) -> None:
    import subprocess
    import sys
    from datetime import datetime, timedelta

    from scheduler.standalone import TriggererOnDemand
    from tradewind.db import session_scope

    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        started.append(child)
        return child

    on_demand = TriggererOnDemand(start)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    second = timedelta(seconds=1)
    try:
        on_demand.tend(session_factory, t0, tries_ended=True)
        assert started == []  # nothing waits
        with session_scope(session_factory) as session:
            session.add(Trigger(classpath="x.Y", kwargs={}))
        on_demand.tend(session_factory, t0 + 0.5 * second, tries_ended=True)
        assert started == []  # looked less than a second ago
        on_demand.tend(session_factory, t0 + 4 * second, tries_ended=False)
        assert started == []  # without ended tries, it looks every five seconds
        on_demand.tend(session_factory, t0 + 1 * second + 0.5 * second, tries_ended=True)
        assert len(started) == 1
        started[0].kill()  # the triggerer dies; the trigger still waits
        started[0].wait()
        on_demand.tend(session_factory, t0 + 7 * second, tries_ended=False)
        assert len(started) == 2
        assert on_demand.child is started[1]
        with session_scope(session_factory) as session:
            session.query(Trigger).delete()
        on_demand.tend(session_factory, t0 + 12 * second, tries_ended=False)
        on_demand.tend(session_factory, t0 + 71 * second, tries_ended=False)
        assert started[1].poll() is None  # idle for 59 s: kept
        on_demand.tend(session_factory, t0 + 76 * second, tries_ended=False)
        assert started[1].poll() is not None
        assert on_demand.child is None
    finally:
        for child in started:
            if child.poll() is None:
                child.kill()
                child.wait()
