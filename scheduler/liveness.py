"""Tries that will not report back: lost processes, zombies, tries stuck in queued, and
runs past their ``dagrun_timeout``. Data functions: the scheduler tick commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, select, tuple_, update
from sqlalchemy.orm import Session

from tradewind import callbacks
from tradewind.dagversions import serialized_for
from tradewind.models import DagRun, TaskInstance
from tradewind.sdk.baseoperator import FAIL_METHOD
from tradewind.state import (
    FINISHED_STATES,
    DagRunState,
    TaskInstanceState,
    check_transition,
)
from tradewind.wakeup import wake_scheduler
from worker.lost_tries import end_lost_try
from worker.task_runner import TryRequest

if TYPE_CHECKING:
    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
TI = TaskInstanceState
ABANDONED_CALLBACK_AFTER = timedelta(minutes=10)


def runs_with_due_retries(session: Session, now: datetime) -> set[int]:
    rows = session.execute(
        select(DagRun.id)
        .join(
            TaskInstance,
            and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id),
        )
        .where(
            TaskInstance.state.in_([str(TI.UP_FOR_RETRY), str(TI.UP_FOR_RESCHEDULE)]),
            TaskInstance.next_try_at <= now,
        )
        .distinct()
    )
    return {row[0] for row in rows}


def check(
    session: Session, settings: Settings, *, now: datetime, ours: set[TryRequest]
) -> list[TryRequest]:
    """Handle zombies, stuck tries and timed-out runs; returns tries to send again."""
    _zombies(session, settings, now, ours)
    resend = _stuck_in_queued(session, settings, now, ours)
    _timed_out_runs(session, now)
    _timed_out_deferrals(session, now)
    callbacks.fail_abandoned(session, now=now, after=ABANDONED_CALLBACK_AFTER)
    return resend


def _request_of(row: TaskInstance) -> TryRequest:
    return TryRequest(row.dag_id, row.run_id, row.task_id, row.map_index, row.try_number, row.queue)


def _zombies(session: Session, settings: Settings, now: datetime, ours: set[TryRequest]) -> None:
    threshold = timedelta(seconds=settings.zombie_threshold_seconds)
    rows = session.scalars(
        select(TaskInstance).where(
            TaskInstance.state == str(TI.RUNNING), TaskInstance.heartbeat_at < now - threshold
        )
    ).all()
    for row in rows:
        request = _request_of(row)
        if request not in ours:
            silent = (now - row.heartbeat_at).total_seconds() if row.heartbeat_at else 0
            end_lost_try(session, request, f"no heartbeat for {silent:.0f} s (zombie)", now=now)


def _stuck_in_queued(
    session: Session, settings: Settings, now: datetime, ours: set[TryRequest]
) -> list[TryRequest]:
    timeout = timedelta(seconds=settings.task_queued_timeout_seconds)
    rows = session.scalars(
        select(TaskInstance).where(
            TaskInstance.state == str(TI.QUEUED), TaskInstance.queued_dttm < now - timeout
        )
    ).all()
    resend = []
    for row in rows:
        request = _request_of(row)
        if request in ours:
            continue
        if row.resend_count == 0:
            row.resend_count = 1
            row.queued_dttm = now
            resend.append(request)
            logger.warning("%s stuck in queued for %s; sending it again", request, timeout)
        else:
            end_lost_try(session, request, "stuck in queued after being sent twice", now=now)
    return resend


def _timed_out_deferrals(session: Session, now: datetime) -> None:
    """Deferred tries whose trigger did not fire within their timeout resume only to
    fail (``__fail__``), so the task's own code decides how (a sensor may skip)."""
    rows = session.scalars(
        select(TaskInstance).where(
            TaskInstance.state == str(TI.DEFERRED), TaskInstance.trigger_timeout < now
        )
    ).all()
    for row in rows:
        logger.info("%s.%s of %s: its deferral timed out", row.dag_id, row.task_id, row.run_id)
        check_transition(TI.DEFERRED, TI.SCHEDULED)
        row.state = str(TI.SCHEDULED)
        row.scheduled_dttm = now
        row.trigger_id = row.trigger_timeout = None
        row.next_method = FAIL_METHOD
        row.next_kwargs = {"error": "the trigger did not fire within its timeout", "timeout": True}
    for dag_run_pk in _run_pks(session, rows):
        wake_scheduler(session, dag_run_pk, for_a_try=True)


def _run_pks(session: Session, rows: Sequence[TaskInstance]) -> set[int]:
    keys = {(row.dag_id, row.run_id) for row in rows}
    if not keys:
        return set()
    found = session.execute(
        select(DagRun.id).where(tuple_(DagRun.dag_id, DagRun.run_id).in_(sorted(keys)))
    )
    return {pk for (pk,) in found}


def _timed_out_runs(session: Session, now: datetime) -> None:
    runs = session.scalars(
        select(DagRun).where(
            DagRun.state == str(DagRunState.RUNNING), DagRun.start_date.is_not(None)
        )
    ).all()
    for run in runs:
        if run.dag_version_id is None or run.start_date is None:
            continue
        timeout = serialized_for(session, run.dag_version_id).dagrun_timeout
        if timeout is None or run.start_date + timeout > now:
            continue
        logger.warning(
            "Run %s of %s exceeded its dagrun_timeout of %s", run.run_id, run.dag_id, timeout
        )
        session.execute(
            update(TaskInstance)
            .where(
                TaskInstance.dag_id == run.dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.state.is_(None)
                | TaskInstance.state.not_in([str(s) for s in FINISHED_STATES]),
            )
            .values(
                state=str(TI.FAILED),
                end_date=now,
                **dict.fromkeys(("trigger_id", "trigger_timeout", "next_method", "next_kwargs")),
            )
        )
        run.state = str(DagRunState.FAILED)
        run.end_date = now
        run.note = f"failed: exceeded dagrun_timeout of {timeout}"
