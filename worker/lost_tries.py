"""Ending a try whose process can no longer record its own end.

Its process died (a crash, ``kill -9``, a worker lost with its machine), it stopped
heartbeating (a zombie), or it was never picked up. The scheduler calls this for tries
it finds so; a Celery worker calls it for a try child that died under it. Either way
the task's retry policy decides, through `tradewind.state.resolve_try_end`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind import callbacks
from tradewind.dagversions import retry_policy_for, serialized_for
from tradewind.models import DagRun, LogChunk, TaskInstance
from tradewind.state import TaskInstanceState, TryEnd, check_transition, resolve_try_end
from worker.task_runner import TryRequest

logger = logging.getLogger(__name__)
TI = TaskInstanceState


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


def end_lost_try(
    session: Session,
    request: TryRequest,
    detail: str,
    *,
    now: datetime,
    end: TryEnd = TryEnd.LOST,
    reporter: str = "scheduler",
    pid: int | None = None,
) -> bool:
    """End a try whose process can no longer record its own end (retry or fail it);
    ``end`` is LOST, or INTERRUPTED for a try stopped by its worker's shutdown.

    Does nothing when the try already ended or a newer try started. Given the ``pid``
    of the process that died, it ends only a try that process had claimed (not one that
    another delivery of the same message runs, nor one still queued).
    """
    row = _instance(session, request)
    if row is None or row.try_number != request.try_number:
        return False
    if row.state not in (str(TI.RUNNING), str(TI.QUEUED)):
        return False
    if pid is not None and (row.state != str(TI.RUNNING) or row.pid != pid):
        return False
    policy = retry_policy_for(
        session, row.dag_version_id, row.task_id, fallback_retries=row.max_tries
    )
    spec_raw: dict[str, Any] = {}
    if row.dag_version_id is not None:
        spec = serialized_for(session, row.dag_version_id).tasks.get(row.task_id)
        spec_raw = dict(spec.raw) if spec is not None else {}
    transition = resolve_try_end(
        end,
        try_number=row.try_number,
        policy=policy,
        now=now,
        jitter_key=f"{row.dag_id}.{row.task_id}.{row.run_id}.{row.map_index}",
        max_tries=row.max_tries,
    )
    check_transition(TI(row.state), transition.state)
    row.state = str(transition.state)
    row.end_date = now
    row.duration = (now - row.start_date).total_seconds() if row.start_date else None
    row.next_try_at = transition.next_try_at
    message = f"{detail}; try {row.try_number} is marked {transition.state}"
    _note_in_log(session, row, message, now, reporter)
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


def _note_in_log(
    session: Session, row: TaskInstance, message: str, now: datetime, reporter: str
) -> None:
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
            content=f"[{stamp}] {{{reporter}}} ERROR - {message}\n",
        )
    )
