"""The scheduler's side of backfills: create their runs as room frees up, and mark
them completed. Data functions inside the scheduler tick's transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.run_creation import isolated, lock_rows
from tradewind.backfills import skip_reason
from tradewind.clearing import clear
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.errors import DagRunAlreadyExists, ParamValidationError
from tradewind.models import Backfill, BackfillDagRun, DagModel, DagRun, TaskInstance
from tradewind.schedules import DataInterval
from tradewind.state import DagRunState, DagRunType

logger = logging.getLogger(__name__)
BACKFILL_TRIGGER = "backfill"
_UNFINISHED = (str(DagRunState.QUEUED), str(DagRunState.RUNNING))


def advance_backfills(session: Session, now: datetime) -> list[DagRun]:
    """For each backfill in progress: create (or reuse) runs for its next dates while
    fewer than ``max_active_runs`` of its runs are unfinished; mark it completed once
    every date has been dealt with and its runs ended. Returns the runs created."""
    query = select(Backfill).where(Backfill.completed_at.is_(None)).order_by(Backfill.id)
    created: list[DagRun] = []
    for backfill in session.scalars(lock_rows(session, query)).all():
        with isolated(session, f"advancing backfill {backfill.id} of {backfill.dag_id}"):
            created.extend(_advance(session, backfill, now))
    return created


def _unfinished_runs(session: Session, backfill_id: int) -> int:
    count = session.scalar(
        select(func.count()).where(DagRun.backfill_id == backfill_id, DagRun.state.in_(_UNFINISHED))
    )
    return int(count or 0)


def _advance(session: Session, backfill: Backfill, now: datetime) -> list[DagRun]:
    created: list[DagRun] = []
    unfinished = _unfinished_runs(session, backfill.id)
    model = session.get(DagModel, backfill.dag_id)
    if model is not None and not backfill.is_paused and not model.is_paused:
        room = backfill.max_active_runs - unfinished
        while room > 0:
            pending = session.scalars(
                select(BackfillDagRun)
                .where(
                    BackfillDagRun.backfill_id == backfill.id,
                    BackfillDagRun.dag_run_id.is_(None),
                    BackfillDagRun.exception_reason.is_(None),
                )
                .order_by(BackfillDagRun.sort_ordinal)
                .limit(room)
            ).all()
            if not pending:
                break
            for date in pending:
                run = _run_for(session, backfill, model, date, now)
                if run is not None:
                    created.append(run)
                    room -= 1
    if not created and unfinished == 0 and not _dates_waiting(session, backfill):
        backfill.completed_at = backfill.updated_at = now
        logger.info("Backfill %s of %s completed", backfill.id, backfill.dag_id)
    return created


def _dates_waiting(session: Session, backfill: Backfill) -> bool:
    """Dates of the backfill that have neither a run nor a reason to have none."""
    waiting = session.scalar(
        select(func.count()).where(
            BackfillDagRun.backfill_id == backfill.id,
            BackfillDagRun.dag_run_id.is_(None),
            BackfillDagRun.exception_reason.is_(None),
        )
    )
    return bool(waiting)


def _run_for(
    session: Session, backfill: Backfill, model: DagModel, date: BackfillDagRun, now: datetime
) -> DagRun | None:
    """The run of one date: a new one, or an existing one cleared to run again; None
    (with the reason recorded) when the date is skipped."""
    existing = session.scalar(
        select(DagRun).where(
            DagRun.dag_id == backfill.dag_id, DagRun.logical_date == date.logical_date
        )
    )
    if existing is not None:
        reason = skip_reason(existing.state, backfill.reprocess_behavior)
        if reason is not None:
            date.exception_reason = reason
            return None
        return _rerun(session, backfill, existing, date, now)
    interval = None
    if date.data_interval_start is not None and date.data_interval_end is not None:
        interval = DataInterval(date.data_interval_start, date.data_interval_end)
    try:
        with session.begin_nested():
            run = create_dag_run(
                session,
                model,
                latest_version(session, backfill.dag_id),
                RunRequest(
                    run_type=DagRunType.BACKFILL,
                    run_after=date.run_after,
                    logical_date=date.logical_date,
                    data_interval=interval,
                    conf=backfill.dag_run_conf,
                    triggered_by=BACKFILL_TRIGGER,
                    triggering_user_name=backfill.triggering_user_name,
                ),
                now=now,
            )
    except (DagRunAlreadyExists, ParamValidationError) as exc:
        date.exception_reason = str(exc)
        return None
    run.backfill_id = backfill.id
    date.dag_run_id = run.id
    logger.info("Backfill %s: created run %s of %s", backfill.id, run.run_id, backfill.dag_id)
    return run


def _rerun(
    session: Session, backfill: Backfill, run: DagRun, date: BackfillDagRun, now: datetime
) -> DagRun:
    rows = session.scalars(
        select(TaskInstance).where(
            TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id
        )
    ).all()
    clear(session, rows, now=now)
    run.backfill_id = backfill.id
    run.run_type = str(DagRunType.BACKFILL)
    run.triggered_by = BACKFILL_TRIGGER
    if backfill.dag_run_conf:
        run.conf = dict(backfill.dag_run_conf)
    date.dag_run_id = run.id
    logger.info("Backfill %s: running %s of %s again", backfill.id, run.run_id, run.dag_id)
    return run
