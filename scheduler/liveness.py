"""Tries that will not report back: lost processes, zombies, tries stuck in queued, and
runs past their ``dagrun_timeout``. Data functions: the scheduler tick commits."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from tradewind import callbacks
from tradewind.dagversions import retry_policy_for, serialized_for
from tradewind.models import DagRun, LogChunk, TaskInstance
from tradewind.state import (
    FINISHED_STATES,
    DagRunState,
    TaskInstanceState,
    TryEnd,
    check_transition,
    resolve_try_end,
)
from worker.task_runner import TryRequest

if TYPE_CHECKING:
    from tradewind.settings import Settings

logger = logging.getLogger(__name__)
TI = TaskInstanceState
ABANDONED_CALLBACK_AFTER = timedelta(minutes=10)


def _instance(session: Session, request: TryRequest) -> TaskInstance | None:
    query = select(TaskInstance).where(
        TaskInstance.dag_id == request.dag_id,
        TaskInstance.run_id == request.run_id,
        TaskInstance.task_id == request.task_id,
        TaskInstance.map_index == request.map_index,
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def end_lost_try(session: Session, request: TryRequest, detail: str, *, now: datetime) -> bool:
    """End a try whose process can no longer record its own end (retry or fail it).

    Does nothing when the try already ended or a newer try started.
    """
    row = _instance(session, request)
    if row is None or row.try_number != request.try_number:
        return False
    if row.state not in (str(TI.RUNNING), str(TI.QUEUED)):
        return False
    policy = retry_policy_for(
        session, row.dag_version_id, row.task_id, fallback_retries=row.max_tries
    )
    spec_raw: dict[str, Any] = {}
    if row.dag_version_id is not None:
        spec = serialized_for(session, row.dag_version_id).tasks.get(row.task_id)
        spec_raw = dict(spec.raw) if spec is not None else {}
    transition = resolve_try_end(
        TryEnd.LOST,
        try_number=row.try_number,
        policy=policy,
        now=now,
        jitter_key=f"{row.dag_id}.{row.task_id}.{row.run_id}.{row.map_index}",
    )
    check_transition(TI(row.state), transition.state)
    row.state = str(transition.state)
    row.end_date = now
    row.duration = (now - row.start_date).total_seconds() if row.start_date else None
    row.next_try_at = transition.next_try_at
    _note_in_log(session, row, f"{detail}; try {row.try_number} is marked {transition.state}", now)
    _owe_task_callback(session, row, transition.state, detail, spec_raw)
    logger.warning("%s: %s; marked %s", request, detail, transition.state)
    return True


def _owe_task_callback(
    session: Session, row: TaskInstance, state: TI, detail: str, spec: dict[str, Any]
) -> None:
    """The lost process cannot run the task's callbacks; owe them as a request."""
    wants_email = bool(spec.get("email")) and (
        (state is TI.FAILED and spec.get("email_on_failure"))
        or (state is TI.UP_FOR_RETRY and spec.get("email_on_retry"))
    )
    if not (spec.get("has_callbacks") or wants_email):
        return
    if state not in (TI.FAILED, TI.UP_FOR_RETRY):
        return
    callbacks.request_callback(
        session,
        callbacks.TASK_FAILURE if state is TI.FAILED else callbacks.TASK_RETRY,
        dag_id=row.dag_id,
        run_id=row.run_id,
        task_id=row.task_id,
        map_index=row.map_index,
        try_number=row.try_number,
        message=detail,
    )


def _note_in_log(session: Session, row: TaskInstance, message: str, now: datetime) -> None:
    run_pk = session.scalar(
        select(DagRun.id).where(DagRun.dag_id == row.dag_id, DagRun.run_id == row.run_id)
    )
    if run_pk is None:
        return
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"
    session.add(
        LogChunk(
            dag_run_id=run_pk,
            dag_id=row.dag_id,
            run_id=row.run_id,
            task_id=row.task_id,
            map_index=row.map_index,
            try_number=row.try_number,
            content=f"[{stamp}] {{scheduler}} ERROR - {message}\n",
        )
    )


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
    callbacks.fail_abandoned(session, now=now, after=ABANDONED_CALLBACK_AFTER)
    return resend


def _request_of(row: TaskInstance) -> TryRequest:
    return TryRequest(row.dag_id, row.run_id, row.task_id, row.map_index, row.try_number)


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
            .values(state=str(TI.FAILED), end_date=now)
        )
        run.state = str(DagRunState.FAILED)
        run.end_date = now
        run.note = f"failed: exceeded dagrun_timeout of {timeout}"
