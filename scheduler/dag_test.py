"""`tradewind dags test`: one DAG run, start to end, in this process.

The run is created and recorded in the metadata DB like any other; its tasks run one
by one through the worker's task runner (so behaviour matches the workers exactly),
in the order the planner releases them, waiting out retry delays.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import delete, func, select

from scheduler.dag_processing.processor import DagFileProcessor
from scheduler.run_creation import TEST_TRIGGER
from scheduler.run_driver import advance_run, queue_instance
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.db import session_scope
from tradewind.errors import DagNotFound, TradewindError
from tradewind.models import DagModel, DagRun, ParseImportError, TaskInstance
from tradewind.models.base import utcnow
from tradewind.state import DagRunState, DagRunType
from worker.execution import _call_all
from worker.task_runner import TaskRunner, TryRequest

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DagTestResult:
    dag_id: str
    run_id: str
    state: DagRunState
    tasks: list[dict[str, Any]]


def find_parsed_dag(
    factory: sessionmaker[Session], settings: Settings, dag_id: str, *, now: datetime
) -> DagModel:
    """Bring the DB up to date with the DAG folder and return the DAG's row.

    Raises `DagNotFound` naming the folder (and any import errors, which are the usual
    reason a DAG is missing).
    """
    DagFileProcessor(factory, settings).process(now=now)
    with session_scope(factory) as session:
        model = session.get(DagModel, dag_id)
        errors = list(session.scalars(select(ParseImportError).order_by(ParseImportError.filename)))
        if model is not None and not model.is_stale:
            own = [e for e in errors if e.fileloc == model.fileloc]
            if own:
                raise TradewindError(
                    f"DAG {dag_id!r} cannot be loaded: " + "; ".join(_describe(e) for e in own)
                )
            return model
    hint = f" ({len(errors)} file(s) failed to import: {_describe(errors[0])})" if errors else ""
    raise DagNotFound(f"DAG {dag_id!r} not found in {settings.resolved_dags_folder}{hint}")


def _describe(error: ParseImportError) -> str:
    where = f"{error.filename}:{error.lineno}" if error.lineno else error.filename
    return f"{where}: {error.message}"


def run_dag_test(
    factory: sessionmaker[Session],
    settings: Settings,
    dag_id: str,
    *,
    logical_date: datetime | None = None,
    conf: Mapping[str, Any] | None = None,
    echo: TextIO | None = sys.stdout,
) -> DagTestResult:
    now = utcnow()
    model = find_parsed_dag(factory, settings, dag_id, now=now)
    with session_scope(factory) as session:
        run_id = create_test_run(session, model, logical_date or now, conf, now=now).run_id
    runner = TaskRunner(factory, settings, echo=echo)
    state = _drive(factory, runner, dag_id, run_id)
    _dag_callbacks(runner, model, dag_id, run_id, state)
    return DagTestResult(dag_id, run_id, state, task_table(factory, dag_id, run_id))


def create_test_run(
    session: Session,
    model: DagModel,
    logical_date: datetime,
    conf: Mapping[str, Any] | None,
    *,
    now: datetime,
) -> DagRun:
    """A manual run marked as a test, replacing an earlier test run of the same date."""
    _drop_previous_test_run(session, model.dag_id, logical_date)
    request = RunRequest(
        run_type=DagRunType.MANUAL,
        run_after=now,
        logical_date=logical_date,
        conf=conf,
        triggered_by=TEST_TRIGGER,
    )
    return create_dag_run(session, model, latest_version(session, model.dag_id), request, now=now)


def _drop_previous_test_run(session: Session, dag_id: str, logical_date: datetime) -> None:
    """Re-testing the same date replaces the earlier test run; other runs are kept."""
    existing = session.scalar(
        select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)
    )
    if existing is None:
        return
    if existing.triggered_by != TEST_TRIGGER:
        raise TradewindError(
            f"DAG {dag_id!r} already has a {existing.run_type} run ({existing.run_id!r}) for "
            f"{logical_date.isoformat()}; pick another logical date"
        )
    session.execute(delete(DagRun).where(DagRun.id == existing.id))
    session.flush()


def _drive(
    factory: sessionmaker[Session], runner: TaskRunner, dag_id: str, run_id: str
) -> DagRunState:
    while True:
        with session_scope(factory) as session:
            run = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            )
            if run is None:
                raise TradewindError(f"run {run_id!r} of {dag_id!r} vanished while testing")
            now = utcnow()
            step = advance_run(session, run, now=now)
            to_run = [queue_instance(session, row, now) for row in step.scheduled]
        if step.finished is not None:
            return step.finished
        if to_run:
            for request in to_run:
                runner.run(request)
            continue
        if not _wait_for_next_try(factory, dag_id, run_id):
            return _give_up(factory, dag_id, run_id)


STUCK_NOTE = (
    "dags test stopped: no task can run (depends_on_past on a failed earlier run, "
    "or a per-run limit); the run is marked failed"
)


def _give_up(factory: sessionmaker[Session], dag_id: str, run_id: str) -> DagRunState:
    """A test run nothing can advance ends failed (with a note) rather than hang."""
    logger.error("%s: %s", dag_id, STUCK_NOTE)
    with session_scope(factory) as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is not None:
            run.state = str(DagRunState.FAILED)
            run.end_date = utcnow()
            run.note = STUCK_NOTE
    return DagRunState.FAILED


def _wait_for_next_try(factory: sessionmaker[Session], dag_id: str, run_id: str) -> bool:
    """Sleep until the earliest retry is due; False when nothing will ever be due."""
    with session_scope(factory) as session:
        due = session.scalar(
            select(func.min(TaskInstance.next_try_at)).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.next_try_at.is_not(None),
                TaskInstance.state.in_(["up_for_retry", "up_for_reschedule"]),
            )
        )
    if due is None:
        return False
    delay = (due - utcnow()).total_seconds()
    if delay > 0:
        logger.warning("Waiting %.1f s for the next try (retry delay)", delay)
        time.sleep(delay)
    return True


def _dag_callbacks(
    runner: TaskRunner, model: DagModel, dag_id: str, run_id: str, state: DagRunState
) -> None:
    try:
        dag = runner.dags.get(model.fileloc, dag_id)
    except TradewindError:
        return
    callbacks = dag.on_success_callback if state is DagRunState.SUCCESS else dag.on_failure_callback
    context = {"dag": dag, "run_id": run_id, "reason": str(state)}
    _call_all(callbacks, context, f"DAG {state} callback")


def task_table(factory: sessionmaker[Session], dag_id: str, run_id: str) -> list[dict[str, Any]]:
    with session_scope(factory) as session:
        rows = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(
                TaskInstance.start_date.nulls_last(), TaskInstance.task_id, TaskInstance.map_index
            )
        )
        return [
            {
                "task_id": r.task_id,
                "map_index": r.map_index,
                "state": r.state,
                "try_number": r.try_number,
                "duration": None if r.duration is None else round(r.duration, 3),
            }
            for r in rows
        ]


__all__ = ["DagTestResult", "TryRequest", "find_parsed_dag", "run_dag_test", "task_table"]
