"""Backfills: run a DAG again over a range of past logical dates, safely.

Creating a backfill only records the plan: the logical dates its schedule gives in the
range (in order, or latest first) as `BackfillDagRun` rows. The scheduler then creates
the runs (``run_type`` ``backfill``), no more than the backfill's ``max_active_runs``
unfinished at once, and their tasks queue behind those of other runs. A date that
already has a run is skipped, or that run is cleared and run again, as
``reprocess_behavior`` says:

- ``none``: never touch an existing run;
- ``failed``: run a failed one again;
- ``completed``: run a failed or successful one again.

A run that is still queued or running is never touched. Pausing a backfill stops it
creating and starting runs; cancelling it also fails its runs that had not started.
Data functions: the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tradewind.dagruns import latest_version
from tradewind.errors import (
    BackfillAlreadyRunning,
    BackfillError,
    BackfillNotFound,
    DagNotFound,
    ParamValidationError,
)
from tradewind.models import Backfill, BackfillDagRun, DagModel, DagRun
from tradewind.schedules import DagRunInfo, TimeRestriction
from tradewind.sdk.params import params_from_dump
from tradewind.serialization import SerializedDag
from tradewind.state import DagRunState
from tradewind.wakeup import wake_scheduler

REPROCESS_BEHAVIORS = ("none", "failed", "completed")
DEFAULT_MAX_ACTIVE_RUNS = 10
MAX_RUNS = 10_000  # a typo in a date should not plan a million runs
_REPROCESSED = {
    "none": frozenset[str](),
    "failed": frozenset({str(DagRunState.FAILED)}),
    "completed": frozenset({str(DagRunState.FAILED), str(DagRunState.SUCCESS)}),
}


@dataclass(frozen=True)
class BackfillRequest:
    dag_id: str
    from_date: datetime
    to_date: datetime
    max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS
    reprocess_behavior: str = "none"
    run_backwards: bool = False
    conf: Mapping[str, Any] | None = None
    triggering_user_name: str | None = None


@dataclass(frozen=True)
class PlannedRun:
    """A date of a backfill and what creating the backfill now would do with it."""

    info: DagRunInfo
    existing_state: str | None
    skip_reason: str | None

    @property
    def logical_date(self) -> datetime:
        assert self.info.logical_date is not None
        return self.info.logical_date


@dataclass(frozen=True)
class Progress:
    """How far a backfill has come, by date."""

    total: int
    succeeded: int
    failed: int
    running: int
    queued: int
    pending: int
    skipped: int

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped


def skip_reason(existing_state: str | None, reprocess_behavior: str) -> str | None:
    """Why a date with a run in ``existing_state`` is skipped, or None to (re)run it."""
    if existing_state is None:
        return None
    if existing_state not in (str(DagRunState.SUCCESS), str(DagRunState.FAILED)):
        return f"a run of this date is {existing_state}"
    if existing_state in _REPROCESSED[reprocess_behavior]:
        return None
    return f"a run of this date exists ({existing_state}; reprocess_behavior={reprocess_behavior})"


def plan(session: Session, request: BackfillRequest, *, now: datetime) -> list[PlannedRun]:
    """The dates a backfill would run, in order, each with what would happen to it;
    raises `BackfillError` (or `DagNotFound`) for a request that cannot be met."""
    _check_request(request)
    return _plan(session, request, _dag(session, request.dag_id), now)


def _plan(
    session: Session, request: BackfillRequest, dag: SerializedDag, now: datetime
) -> list[PlannedRun]:
    infos = _dates(dag, request, now)
    if request.run_backwards:
        infos.reverse()
    existing = dict(
        session.execute(
            select(DagRun.logical_date, DagRun.state).where(
                DagRun.dag_id == request.dag_id,
                DagRun.logical_date >= request.from_date,
                DagRun.logical_date <= request.to_date,
            )
        ).all()
    )
    return [
        PlannedRun(
            info,
            existing.get(info.logical_date),
            skip_reason(existing.get(info.logical_date), request.reprocess_behavior),
        )
        for info in infos
    ]


def create_backfill(session: Session, request: BackfillRequest, *, now: datetime) -> Backfill:
    """Record a backfill for the scheduler to run."""
    _check_request(request)
    dag = _dag(session, request.dag_id)
    planned = _plan(session, request, dag, now)
    try:
        params_from_dump(dag.params).resolve(dict(request.conf or {}))
    except ParamValidationError as exc:
        raise ParamValidationError(
            f"dag_run_conf does not fit the params of {request.dag_id}: {exc}"
        ) from None
    running = session.scalar(
        select(Backfill.id).where(
            Backfill.dag_id == request.dag_id, Backfill.completed_at.is_(None)
        )
    )
    if running is not None:
        raise BackfillAlreadyRunning(
            f"{request.dag_id} already has backfill {running} in progress; "
            f"wait for it or cancel it (tradewind backfill cancel {running})"
        )
    backfill = Backfill(
        dag_id=request.dag_id,
        from_date=request.from_date,
        to_date=request.to_date,
        dag_run_conf=dict(request.conf or {}),
        is_paused=False,
        reprocess_behavior=request.reprocess_behavior,
        max_active_runs=request.max_active_runs,
        run_backwards=request.run_backwards,
        triggering_user_name=request.triggering_user_name,
        created_at=now,
        updated_at=now,
    )
    session.add(backfill)
    session.flush()
    session.add_all(
        BackfillDagRun(
            backfill_id=backfill.id,
            logical_date=run.logical_date,
            run_after=run.info.run_after,
            data_interval_start=run.info.data_interval.start if run.info.data_interval else None,
            data_interval_end=run.info.data_interval.end if run.info.data_interval else None,
            sort_ordinal=ordinal,
        )
        for ordinal, run in enumerate(planned, start=1)
    )
    session.flush()
    wake_scheduler(session)
    return backfill


def get_backfill(session: Session, backfill_id: int) -> Backfill:
    backfill = session.get(Backfill, backfill_id)
    if backfill is None:
        raise BackfillNotFound(f"no backfill with id {backfill_id}")
    return backfill


def set_paused(session: Session, backfill_id: int, paused: bool, *, now: datetime) -> Backfill:
    backfill = get_backfill(session, backfill_id)
    if backfill.completed_at is not None:
        raise BackfillError(f"backfill {backfill_id} has completed; it cannot be (un)paused")
    backfill.is_paused = paused
    backfill.updated_at = now
    wake_scheduler(session)
    return backfill


def cancel(session: Session, backfill_id: int, *, now: datetime) -> Backfill:
    """Stop a backfill: no more runs are created, its queued runs fail, the runs
    already running finish."""
    backfill = get_backfill(session, backfill_id)
    if backfill.completed_at is not None:
        return backfill
    session.execute(
        update(DagRun)
        .where(DagRun.backfill_id == backfill_id, DagRun.state == str(DagRunState.QUEUED))
        .values(state=str(DagRunState.FAILED), end_date=now, note="backfill cancelled")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(BackfillDagRun)
        .where(
            BackfillDagRun.backfill_id == backfill_id,
            BackfillDagRun.dag_run_id.is_(None),
            BackfillDagRun.exception_reason.is_(None),
        )
        .values(exception_reason="backfill cancelled")
        .execution_options(synchronize_session=False)
    )
    backfill.is_paused = True
    backfill.completed_at = backfill.updated_at = now
    return backfill


ACTIONS = ("pause", "unpause", "cancel")


def change(session: Session, backfill_id: int, action: str, *, now: datetime) -> Backfill:
    """Pause, unpause or cancel a backfill (the CLI, the API and the UI all come here)."""
    if action == "cancel":
        return cancel(session, backfill_id, now=now)
    if action in ("pause", "unpause"):
        return set_paused(session, backfill_id, action == "pause", now=now)
    raise BackfillError(f"unknown backfill action {action!r}: use one of {', '.join(ACTIONS)}")


def progress(session: Session, backfill_ids: list[int]) -> dict[int, Progress]:
    """Progress of each backfill, from its dates and the states of their runs."""
    counts: dict[int, dict[str, int]] = {i: {} for i in backfill_ids}
    rows = session.execute(
        select(
            BackfillDagRun.backfill_id,
            DagRun.state,
            BackfillDagRun.exception_reason.is_not(None),
            func.count(),
        )
        .outerjoin(DagRun, DagRun.id == BackfillDagRun.dag_run_id)
        .where(BackfillDagRun.backfill_id.in_(backfill_ids))
        .group_by(
            BackfillDagRun.backfill_id, DagRun.state, BackfillDagRun.exception_reason.is_not(None)
        )
    )
    for backfill_id, state, skipped, count in rows:
        key = "skipped" if skipped else (state or "pending")
        counts[backfill_id][key] = counts[backfill_id].get(key, 0) + count
    return {
        backfill_id: Progress(
            total=sum(c.values()),
            succeeded=c.get(str(DagRunState.SUCCESS), 0),
            failed=c.get(str(DagRunState.FAILED), 0),
            running=c.get(str(DagRunState.RUNNING), 0),
            queued=c.get(str(DagRunState.QUEUED), 0),
            pending=c.get("pending", 0),
            skipped=c.get("skipped", 0),
        )
        for backfill_id, c in counts.items()
    }


def _check_request(request: BackfillRequest) -> None:
    if request.reprocess_behavior not in REPROCESS_BEHAVIORS:
        raise BackfillError(
            f"reprocess_behavior must be one of {', '.join(REPROCESS_BEHAVIORS)}, "
            f"got {request.reprocess_behavior!r}"
        )
    if not isinstance(request.max_active_runs, int) or request.max_active_runs < 1:
        raise BackfillError(f"max_active_runs must be at least 1, got {request.max_active_runs!r}")
    for name in ("from_date", "to_date"):
        if getattr(request, name).tzinfo is None:
            raise BackfillError(f"{name} must have a time zone")
    if request.from_date > request.to_date:
        raise BackfillError(
            f"from_date {request.from_date.isoformat()} is after "
            f"to_date {request.to_date.isoformat()}"
        )


def _dag(session: Session, dag_id: str) -> SerializedDag:
    model = session.get(DagModel, dag_id)
    if model is None or model.is_stale:
        raise DagNotFound(f"DAG {dag_id!r} not found")
    return SerializedDag.from_dict(latest_version(session, dag_id).serialized)


def _dates(dag: SerializedDag, request: BackfillRequest, now: datetime) -> list[DagRunInfo]:
    """The runs the DAG's schedule gives with logical dates in the range, excluding any
    not due yet (their data interval has not ended)."""
    schedule = dag.schedule
    if not schedule.periodic:
        raise BackfillError(
            f"{request.dag_id} has schedule {schedule.summary!r}; a backfill needs a "
            "time-based schedule (a cron expression, a preset such as @daily, or a timedelta)"
        )
    restriction = TimeRestriction(request.from_date, request.to_date, catchup=True)
    infos: list[DagRunInfo] = []
    info = schedule.next_dagrun_info(last_automated=None, restriction=restriction, now=now)
    while info is not None and info.logical_date is not None:
        if info.logical_date > request.to_date or info.run_after > now:
            break
        infos.append(info)
        if len(infos) > MAX_RUNS:
            raise BackfillError(
                f"the range holds more than {MAX_RUNS} runs of {request.dag_id}; "
                "backfill it in parts"
            )
        info = schedule.next_dagrun_info(last_automated=info, restriction=restriction, now=now)
    if not infos:
        raise BackfillError(
            f"no runs of {request.dag_id} ({schedule.summary}) have a logical date between "
            f"{request.from_date.isoformat()} and {request.to_date.isoformat()} "
            "and are due already"
        )
    return infos


__all__ = [
    "REPROCESS_BEHAVIORS",
    "BackfillRequest",
    "PlannedRun",
    "Progress",
    "cancel",
    "change",
    "create_backfill",
    "get_backfill",
    "plan",
    "progress",
    "set_paused",
    "skip_reason",
]
