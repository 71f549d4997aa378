"""Sensors through a real scheduler process (local executor), on SQLite and Postgres: a
FileSensor in reschedule mode gives its only slot to another task while it waits for a
file created mid-test; its timeout counts from its first poke across reschedules; an
ExternalTaskSensor waits for another DAG's task."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.daemons import Daemon, daemon_env, running, wait_for
from tests.integration.test_scheduler import parse_and_unpause
from tradewind.models import DagRun, TaskInstance, TaskReschedule
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

LANDING = """
from tradewind import DAG, task
from tradewind.sensors.filesystem import FileSensor

SIDE = {side!r}

def mark(line):
    with open(SIDE, "a") as side:
        side.write(line + "\\n")

with DAG("landing"):
    wait = FileSensor(task_id="wait_for_file", filepath={landing!r} + "/{{{{ ds }}}}/*.csv",
                      mode="reschedule", poke_interval=0.3, timeout=300, priority_weight=10)

    @task
    def load():
        mark("load")

    @task(priority_weight=1)
    def busy():
        mark("busy")

    wait >> load()
    busy()
"""

PATIENT = """
from tradewind import DAG
from tradewind.sensors.filesystem import FileSensor

with DAG("patient"):
    FileSensor(task_id="never", filepath="/nonexistent/tradewind/file", mode="reschedule",
               poke_interval=0.3, timeout=2, retries=2)
    FileSensor(task_id="never_soft", filepath="/nonexistent/tradewind/file",
               mode="reschedule", poke_interval=0.3, timeout=2, soft_fail=True)
"""

UPSTREAM = """
import time
from tradewind import DAG, task

with DAG({dag_id!r}):
    @task
    def produce():
        time.sleep(1)
        if {fails!r}:
            raise RuntimeError("the upstream data is broken")

    produce()
"""

DOWNSTREAM = """
from tradewind import DAG, task
from tradewind.sensors.external_task import ExternalTaskSensor

with DAG({dag_id!r}):
    wait = ExternalTaskSensor(task_id="wait_for_produce", external_dag_id={upstream!r},
                              external_task_id="produce", mode="reschedule",
                              poke_interval=0.3, timeout=120,
                              failed_states=["failed", "upstream_failed"])

    @task
    def consume():
        print("consumed")

    wait >> consume()
"""

DAY = "2026-03-01T00:00:00+00:00"


@pytest.fixture
def scheduler(settings: Settings, tmp_path: Path) -> Iterator[Daemon]:
    # One slot: a sensor that held it while waiting would starve every other task.
    env = daemon_env(settings, TRADEWIND_PARALLELISM="1")
    with running(["scheduler"], env, tmp_path / "scheduler.log") as daemon:
        yield daemon


def trigger(settings: Settings, tmp_path: Path, dag_id: str, *extra: str) -> None:
    with running(
        ["dags", "trigger", dag_id, *extra], daemon_env(settings), tmp_path / f"{dag_id}.log"
    ) as command:
        assert command.process.wait(timeout=60) == 0, command.output()


def instances(factory: sessionmaker[Session], dag_id: str) -> dict[str, TaskInstance]:
    with factory() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id))
        return {row.task_id: row for row in rows}


def run_state(factory: sessionmaker[Session], dag_id: str) -> str | None:
    with factory() as session:
        return session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id))


def reschedules(factory: sessionmaker[Session], ti_id: str) -> list[TaskReschedule]:
    with factory() as session:
        return list(
            session.scalars(
                select(TaskReschedule)
                .where(TaskReschedule.ti_id == ti_id)
                .order_by(TaskReschedule.start_date)
            )
        )


def test_a_rescheduling_file_sensor_frees_its_slot_until_the_file_lands(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    tmp_path: Path,
) -> None:
    side, landing = tmp_path / "side.txt", tmp_path / "landing"
    source = LANDING.format(side=str(side), landing=str(landing))
    (dags_folder / "landing.py").write_text(textwrap.dedent(source))
    parse_and_unpause(session_factory, settings, "landing")
    trigger(settings, tmp_path, "landing", "--logical-date", DAY)

    # With its one slot, `busy` can only run while the sensor waits up_for_reschedule.
    wait_for(lambda: side.exists() and "busy" in side.read_text(), "busy to run meanwhile")
    sensor = instances(session_factory, "landing")["wait_for_file"]
    assert sensor.state in ("up_for_reschedule", "queued", "running"), sensor.state
    wait_for(lambda: len(reschedules(session_factory, sensor.id)) >= 2, "a few more pokes")

    (landing / "2026-03-01").mkdir(parents=True)
    (landing / "2026-03-01" / "orders.csv").write_text("id\n1\n")
    wait_for(lambda: run_state(session_factory, "landing") == "success", "the run to succeed")
    tis = instances(session_factory, "landing")
    assert {k: (v.state, v.try_number) for k, v in tis.items()} == {
        "wait_for_file": ("success", 1),  # every poke belongs to its one try
        "load": ("success", 1),
        "busy": ("success", 1),
    }
    pokes = reschedules(session_factory, tis["wait_for_file"].id)
    assert all(p.try_number == 1 for p in pokes)
    assert pokes[0].end_date <= tis["busy"].start_date  # the slot was handed over
    assert side.read_text().splitlines() == ["busy", "load"]


def test_a_rescheduled_sensor_times_out_from_its_first_poke(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    tmp_path: Path,
) -> None:
    (dags_folder / "patient.py").write_text(textwrap.dedent(PATIENT))
    parse_and_unpause(session_factory, settings, "patient")
    trigger(settings, tmp_path, "patient")
    wait_for(lambda: run_state(session_factory, "patient") == "failed", "the sensor to time out")
    tis = instances(session_factory, "patient")
    # Failed at its first try although retries were left: waiting again would not help.
    assert (tis["never"].state, tis["never"].try_number) == ("failed", 1)
    assert tis["never_soft"].state == "skipped"
    pokes = reschedules(session_factory, tis["never"].id)
    assert len(pokes) >= 2
    assert tis["never"].end_date is not None
    assert (tis["never"].end_date - pokes[0].start_date).total_seconds() >= 2


def test_an_external_task_sensor_waits_for_the_other_dag(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    tmp_path: Path,
) -> None:
    (dags_folder / "upstream.py").write_text(UPSTREAM.format(dag_id="upstream", fails=False))
    source = DOWNSTREAM.format(dag_id="downstream", upstream="upstream")
    (dags_folder / "downstream.py").write_text(source)
    parse_and_unpause(session_factory, settings, "upstream", "downstream")
    trigger(settings, tmp_path, "downstream", "--logical-date", DAY)

    def poked_in_vain() -> bool:
        sensor = instances(session_factory, "downstream").get("wait_for_produce")
        return sensor is not None and bool(reschedules(session_factory, sensor.id))

    wait_for(poked_in_vain, "the sensor to poke in vain")
    assert run_state(session_factory, "downstream") == "running"
    trigger(settings, tmp_path, "upstream", "--logical-date", DAY)
    try:
        wait_for(
            lambda: run_state(session_factory, "downstream") == "success",
            "the downstream run to succeed",
        )
    except AssertionError:
        states = {
            dag: {k: (v.state, v.try_number) for k, v in instances(session_factory, dag).items()}
            for dag in ("upstream", "downstream")
        }
        print(states, scheduler.output()[-6000:])
        raise
    assert run_state(session_factory, "upstream") == "success"


def test_an_external_task_sensor_fails_when_the_other_task_fails(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    scheduler: Daemon,
    tmp_path: Path,
) -> None:
    (dags_folder / "broken.py").write_text(UPSTREAM.format(dag_id="broken", fails=True))
    source = DOWNSTREAM.format(dag_id="reporting", upstream="broken")
    (dags_folder / "reporting.py").write_text(source)
    parse_and_unpause(session_factory, settings, "broken", "reporting")
    trigger(settings, tmp_path, "broken", "--logical-date", DAY)
    trigger(settings, tmp_path, "reporting", "--logical-date", DAY)
    wait_for(lambda: run_state(session_factory, "reporting") == "failed", "the sensor to fail")
    tis = instances(session_factory, "reporting")
    assert tis["wait_for_produce"].state == "failed"
    assert tis["consume"].state == "upstream_failed"
