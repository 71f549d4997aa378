"""`TriggerDagRunOperator` through a real scheduler process (local executor), on SQLite
and Postgres: it starts another DAG's run with a rendered conf and waits for it; with
``reset_dag_run`` a second trigger of the same run id runs it again; with
``deferrable=True`` it waits in the triggerer instead of its worker slot."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.daemons import daemon_env, running, wait_for
from tests.integration.test_scheduler import parse_and_unpause
from tradewind import xcom
from tradewind.models import DagRun
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

DAGS = """
from tradewind import DAG, task
from tradewind.operators.trigger_dagrun import TriggerDagRunOperator

SIDE = {side!r}

with DAG("target", params={{"day": "unset"}}):
    @task
    def work(params=None, dag_run=None):
        with open(SIDE, "a") as side:
            side.write(f"target {{params['day']}} {{dag_run.triggered_by}}\\n")

    work()

with DAG("controller"):
    kick = TriggerDagRunOperator(
        task_id="kick",
        trigger_dag_id="target",
        trigger_run_id="from_controller",
        conf={{"day": "{{{{ ds }}}}"}},
        reset_dag_run=True,
        wait_for_completion=True,
        poke_interval=0.3,
        deferrable={deferrable!r},
    )

    @task
    def after():
        with open(SIDE, "a") as side:
            side.write("controller after\\n")

    kick >> after()
"""


def runs(factory: sessionmaker[Session], dag_id: str) -> list[DagRun]:
    with factory() as session:
        return list(session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)))


@pytest.mark.parametrize("deferrable", [False, True], ids=["in_slot", "deferred"])
def test_a_run_triggered_by_a_task_is_waited_for_and_can_be_reset(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    deferrable: bool,
) -> None:
    side = tmp_path / "side.txt"
    source = DAGS.format(side=str(side), deferrable=deferrable)
    (dags_folder / "trigger.py").write_text(textwrap.dedent(source))
    parse_and_unpause(session_factory, settings, "target", "controller")
    # Deferred, the waiting task holds no slot: with one slot the target still runs.
    env = daemon_env(settings, TRADEWIND_PARALLELISM="1" if deferrable else "4")
    daemons = [["scheduler"], ["triggerer"]] if deferrable else [["scheduler"]]
    with contextlib.ExitStack() as stack:
        scheduler, *_ = [
            stack.enter_context(running(args, env, tmp_path / f"{args[0]}.log")) for args in daemons
        ]
        for done, day in enumerate(("2026-03-01", "2026-03-02"), start=1):
            args = ["dags", "trigger", "controller", "--logical-date", f"{day}T00:00:00+00:00"]
            with running(args, env, tmp_path / "trigger.log") as trigger:
                assert trigger.process.wait(timeout=60) == 0, trigger.output()
            wait_for(
                lambda n=done: (
                    [r.state for r in runs(session_factory, "controller")] == ["success"] * n
                ),
                f"the controller run of {day} to succeed",
            )
    assert scheduler.process.returncode == 0, scheduler.output()
    # The controller waited: its downstream task ran after the target's run, each time.
    assert side.read_text().splitlines() == [
        "target 2026-03-01 operator",
        "controller after",
        "target 2026-03-02 operator",  # the same run id, cleared and run again
        "controller after",
    ]
    (target,) = runs(session_factory, "target")
    assert (target.run_id, target.state) == ("from_controller", "success")
    assert target.run_type == "manual"
    assert target.conf == {"day": "2026-03-02"}
    assert target.clear_number == 1
    with session_factory() as session:
        controller = runs(session_factory, "controller")[0]
        pushed = xcom.get_values(
            session, dag_run_pk=controller.id, task_ids=["kick"], key="trigger_run_id"
        )
    assert list(pushed.values()) == ["from_controller"]
