"""Clearing task instances so they run again, and marking them (data functions: the
caller commits). The REST API and the UI both come through here.

Clearing archives the instance's last try (task_instance_history), sets it back to
no state with its retries renewed, and puts its run back in the queue; the scheduler
then plans it as new. A try
still running notices at its next heartbeat that it was cleared and stops itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind.dagversions import retry_policy_for
from tradewind.models import DagRun, TaskInstance, TaskInstanceHistory
from tradewind.state import FINISHED_STATES, DagRunState, TaskInstanceState
from tradewind.wakeup import wake_scheduler

TI = TaskInstanceState
MARKABLE = (TI.SUCCESS, TI.FAILED, TI.SKIPPED)


def history_of(row: TaskInstance) -> TaskInstanceHistory:
    return TaskInstanceHistory(
        task_instance_id=row.id, **{name: getattr(row, name) for name in _HISTORY_COLUMNS}
    )


_HISTORY_COLUMNS = (
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "try_number",
    "max_tries",
    "state",
    "start_date",
    "end_date",
    "duration",
    "queued_dttm",
    "scheduled_dttm",
    "hostname",
    "unixname",
    "pid",
    "pool",
    "pool_slots",
    "queue",
    "priority_weight",
    "operator",
    "custom_operator_name",
    "executor",
    "dag_version_id",
)


def relatives(
    tasks: dict[str, dict[str, Any]],
    task_ids: Iterable[str],
    *,
    upstream: bool = False,
    downstream: bool = False,
) -> set[str]:
    """The task ids given plus, if asked, everything up- or downstream of them (the
    serialized DAG's ``tasks`` by id)."""
    chosen = set(task_ids)
    for direction, wanted in (("upstream", upstream), ("downstream", downstream)):
        if not wanted:
            continue
        pending = list(chosen)
        while pending:
            for other in tasks.get(pending.pop(), {}).get(direction, []):
                if other not in chosen:
                    chosen.add(other)
                    pending.append(other)
    return chosen


def clear(
    session: Session, rows: Sequence[TaskInstance], *, now: datetime, reset_runs: bool = True
) -> list[DagRun]:
    """Clear the instances so they run again; returns the runs put back in the queue."""
    for row in rows:
        if row.state is not None and row.try_number > 0 and not _archived(session, row):
            session.add(history_of(row))
        # As in Airflow, a cleared instance gets its retries again: its next try may be
        # followed by `retries` more.
        policy = retry_policy_for(
            session, row.dag_version_id, row.task_id, fallback_retries=row.max_tries
        )
        row.max_tries = row.try_number + policy.retries
        row.state = None
        row.start_date = row.end_date = row.duration = row.next_try_at = None
        row.queued_dttm = row.scheduled_dttm = None
        row.hostname = row.pid = row.queued_reason = None
        row.resend_count = 0
        forget_deferral(row)
    runs = _runs_of(session, rows)
    if reset_runs:
        for run in runs:
            run.state = str(DagRunState.QUEUED)
            run.queued_at, run.start_date, run.end_date = now, None, None
            run.clear_number = (run.clear_number or 0) + 1
            wake_scheduler(session, run.id)
    return runs


def _archived(session: Session, row: TaskInstance) -> bool:
    return (
        session.scalar(
            select(TaskInstanceHistory.id).where(
                TaskInstanceHistory.task_instance_id == row.id,
                TaskInstanceHistory.try_number == row.try_number,
            )
        )
        is not None
    )


def mark(
    session: Session, rows: Sequence[TaskInstance], state: TaskInstanceState, *, now: datetime
) -> list[TaskInstance]:
    """Set the state of instances as a user does; the runs are re-evaluated."""
    if state not in MARKABLE:
        raise ValueError(f"instances can be marked {', '.join(MARKABLE)}, not {state}")
    for row in rows:
        row.state = str(state)
        row.end_date = now
        row.start_date = row.start_date or now
        row.next_try_at = None
        forget_deferral(row)
    for run in _runs_of(session, rows):
        if run.state in (str(DagRunState.SUCCESS), str(DagRunState.FAILED)):
            run.state, run.end_date = str(DagRunState.RUNNING), None  # decided again
        wake_scheduler(session, run.id)
    return list(rows)


def forget_deferral(row: TaskInstance) -> None:
    """Detach the instance from its trigger (the triggerer drops triggers nobody waits
    on) and from where a deferred try would have resumed."""
    row.trigger_id = row.trigger_timeout = row.next_method = row.next_kwargs = None


def unfinished(row: TaskInstance) -> bool:
    return row.state is None or TI(row.state) not in FINISHED_STATES


def _runs_of(session: Session, rows: Sequence[TaskInstance]) -> list[DagRun]:
    keys = {(r.dag_id, r.run_id) for r in rows}
    runs = []
    for dag_id, run_id in sorted(keys):
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is not None:
            runs.append(run)
    return runs
