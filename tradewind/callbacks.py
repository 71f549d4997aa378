"""Callback requests: callbacks owed for an event, recorded with the event itself.

A callback that needs the DAG's code but has no running try to run it (a DAG run
finished; a try's process was lost) is written as a request in the same transaction as
the state change, then claimed atomically (pending -> running) by exactly one process.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tradewind.models import CallbackRequest

DAG_SUCCESS = "dag_success"
DAG_FAILURE = "dag_failure"
TASK_FAILURE = "task_failure"
TASK_RETRY = "task_retry"
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


def request_callback(
    session: Session,
    kind: str,
    *,
    dag_id: str,
    run_id: str,
    task_id: str | None = None,
    map_index: int = -1,
    try_number: int | None = None,
    message: str = "",
) -> None:
    session.add(
        CallbackRequest(
            kind=kind,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            try_number=try_number,
            message=message,
            state=PENDING,
        )
    )


def pending_ids(session: Session, limit: int) -> list[int]:
    if limit <= 0:
        return []
    query = (
        select(CallbackRequest.id)
        .where(CallbackRequest.state == PENDING)
        .order_by(CallbackRequest.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim(session: Session, request_id: int, *, now: datetime) -> CallbackRequest | None:
    result = session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request_id, CallbackRequest.state == PENDING)
        .values(state=RUNNING, claimed_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(CallbackRequest, request_id)


def finish(session: Session, request_id: int, *, now: datetime, error: str | None) -> None:
    session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request_id)
        .values(state=FAILED if error else DONE, error=error, finished_at=now)
    )


def fail_abandoned(session: Session, *, now: datetime, after: timedelta) -> int:
    """Requests whose runner died mid-way are failed, never run again (at most once)."""
    result = session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.state == RUNNING, CallbackRequest.claimed_at < now - after)
        .values(state=FAILED, error="the process running the callback stopped", finished_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
