"""`tradewind tasks test` and `tasks render`: one task, without its upstream tasks."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scheduler.dag_test import TEST_TRIGGER, create_test_run, find_parsed_dag
from scheduler.run_driver import queue_instance
from tradewind.dagruns import latest_version
from tradewind.db import session_scope
from tradewind.errors import TaskNotFound, TradewindError
from tradewind.models import DagRun, TaskInstance
from tradewind.models.base import utcnow
from tradewind.sdk.context import base_context
from tradewind.serialization import SerializedDag
from tradewind.state import DagRunType
from worker.runtime import DagRunView, RuntimeTaskInstance
from worker.task_runner import TaskRunner

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings


def run_task_test(
    factory: sessionmaker[Session],
    settings: Settings,
    dag_id: str,
    task_id: str,
    *,
    logical_date: datetime | None = None,
    conf: Mapping[str, Any] | None = None,
) -> str:
    """Run one try of ``task_id`` in a fresh test run; returns the state it ended in."""
    now = utcnow()
    model = find_parsed_dag(factory, settings, dag_id, now=now)
    logical_date = logical_date or now
    with session_scope(factory) as session:
        version = latest_version(session, dag_id)
        spec = SerializedDag.from_dict(version.serialized).tasks.get(task_id)
        if spec is None:
            raise TaskNotFound(f"task {task_id!r} not found in DAG {dag_id!r}")
        if spec.is_mapped:
            raise TradewindError(
                f"task {task_id!r} is mapped; run the whole DAG with `tradewind dags test`"
            )
        run = create_test_run(session, model, logical_date, conf, now=now)
        row = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.task_id == task_id,
            )
        )
        if row is None:  # pragma: no cover - create_dag_run made it
            raise TaskNotFound(task_id)
        request = queue_instance(session, row, now)
        run_pk = run.id
    result = TaskRunner(factory, settings, echo=sys.stdout).run(request)
    _close_test_run(factory, run_pk, task_id, str(result.state))
    return str(result.state)


def _close_test_run(factory: sessionmaker[Session], run_pk: int, task_id: str, state: str) -> None:
    """The run existed only to hold one try: end it so that nothing else ever runs in it."""
    with session_scope(factory) as session:
        run = session.get(DagRun, run_pk)
        if run is not None:
            run.state = "success" if state == "success" else "failed"
            run.end_date = utcnow()
            run.note = f"tasks test of {task_id}: only that task ran"


def render_task(
    factory: sessionmaker[Session],
    settings: Settings,
    dag_id: str,
    task_id: str,
    logical_date: datetime | None,
) -> dict[str, Any]:
    """The task's template fields rendered for a run at ``logical_date`` (none created)."""
    now = utcnow()
    model = find_parsed_dag(factory, settings, dag_id, now=now)
    runner = TaskRunner(factory, settings, echo=None)
    dag = runner.dags.get(model.fileloc, dag_id)
    task = dag.get_task(task_id)
    if task.is_mapped:
        raise TradewindError(f"task {task_id!r} is mapped; its fields are rendered per instance")
    logical_date = logical_date or now
    interval = dag.schedule.infer_manual_data_interval(run_after=logical_date)
    run = DagRunView(
        id=0,
        dag_id=dag_id,
        run_id=DagRunType.MANUAL.run_id_for(logical_date),
        run_type=str(DagRunType.MANUAL),
        logical_date=logical_date,
        run_after=now,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        conf={},
        start_date=None,
        triggered_by=TEST_TRIGGER,
    )
    ti = RuntimeTaskInstance(
        id="",
        dag_id=dag_id,
        run_id=run.run_id,
        task_id=task_id,
        map_index=-1,
        try_number=1,
        max_tries=task.retries,
        hostname=runner.hostname,
        start_date=now,
        dag_run=run,
        task=task,
        factory=factory,
    )
    context = base_context(
        dag=dag,
        task=task,
        ti=ti,
        dag_run=run,
        params=dag.params.merged(task.params).resolve({}),
        logical_date=logical_date,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
    )
    return task.render_template_fields(context) or {}


__all__ = ["render_task", "run_task_test"]
