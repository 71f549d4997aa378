"""Creating the runs a DAG's schedule asks for, and starting queued runs.

Every function takes the caller's session and ``now``; the scheduler tick owns the
transaction. On Postgres the DAG rows are claimed with ``FOR UPDATE SKIP LOCKED`` so
that several schedulers never create the same run twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.dagversions import serialized_for
from tradewind.errors import DagRunAlreadyExists, ParamValidationError
from tradewind.models import Backfill, DagModel, DagRun
from tradewind.schedules import DagRunInfo, DataInterval, TimeRestriction
from tradewind.serialization import SerializedDag
from tradewind.state import DagRunState, DagRunType

logger = logging.getLogger(__name__)
RowT = TypeVar("RowT")

ACTIVE_RUN_STATES = (str(DagRunState.QUEUED), str(DagRunState.RUNNING))
SCHEDULE_TRIGGER = "timetable"
TEST_TRIGGER = "test"  # runs of `dags test` / `tasks test`: driven by the CLI, not here
# Stored as the next run time of a DAG whose schedule has ended (keeps it out of the
# "needs computing" query).
NO_MORE_RUNS = datetime(9999, 12, 31, tzinfo=UTC)


def lock_rows(session: Session, query: Select[RowT]) -> Select[RowT]:
    """``FOR UPDATE SKIP LOCKED`` where the database supports it (Postgres)."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def refresh_next_runs(session: Session, now: datetime) -> None:
    """Compute the next run of active DAGs that do not know it yet (new, unpaused,
    or re-parsed DAGs have it cleared)."""
    query = select(DagModel).where(
        DagModel.is_paused.is_(False),
        DagModel.is_stale.is_(False),
        DagModel.next_dagrun_run_after.is_(None),
        DagModel.timetable_type.not_in(["NullTimetable"]),
    )
    for model in session.scalars(lock_rows(session, query)).all():
        with isolated(session, f"computing the next run of {model.dag_id}"):
            dag = SerializedDag.from_dict(latest_version(session, model.dag_id).serialized)
            set_next_run(model, dag, _last_scheduled(session, model.dag_id), now)


def set_next_run(
    model: DagModel, dag: SerializedDag, last: DagRunInfo | None, now: datetime
) -> None:
    restriction = TimeRestriction(dag.start_date, dag.end_date, dag.catchup)
    info = dag.schedule.next_dagrun_info(last_automated=last, restriction=restriction, now=now)
    model.next_dagrun_logical_date = info.logical_date if info else None
    model.next_dagrun_data_interval_start = (
        info.data_interval.start if info and info.data_interval else None
    )
    model.next_dagrun_data_interval_end = (
        info.data_interval.end if info and info.data_interval else None
    )
    # A DAG with no further runs keeps a far-future marker so it is not recomputed.
    model.next_dagrun_run_after = (
        info.run_after if info else datetime.max.replace(tzinfo=now.tzinfo)
    )


def _last_scheduled(session: Session, dag_id: str) -> DagRunInfo | None:
    run = session.scalars(
        select(DagRun)
        .where(DagRun.dag_id == dag_id, DagRun.run_type == str(DagRunType.SCHEDULED))
        .order_by(DagRun.run_after.desc())
        .limit(1)
    ).first()
    if run is None:
        return None
    interval = None
    if run.data_interval_start is not None and run.data_interval_end is not None:
        interval = DataInterval(run.data_interval_start, run.data_interval_end)
    return DagRunInfo(run.run_after, run.logical_date, interval)


def create_due_runs(session: Session, now: datetime) -> list[DagRun]:
    """Create every scheduled run that is due, within each DAG's max_active_runs."""
    refresh_next_runs(session, now)
    query = select(DagModel).where(
        DagModel.is_paused.is_(False),
        DagModel.is_stale.is_(False),
        DagModel.next_dagrun_run_after <= now,
    )
    created = []
    for model in session.scalars(lock_rows(session, query)).all():
        with isolated(session, f"creating the next run of {model.dag_id}"):
            run = _create_next(session, model, now)
            if run is not None:
                created.append(run)
    return created


@contextmanager
def isolated(session: Session, what: str) -> Iterator[None]:
    """Run a step in a savepoint: if it fails, log it and let the others go on."""
    try:
        with session.begin_nested():
            yield
    except Exception:
        logger.exception("Failed %s; carrying on with the rest", what)


def _create_next(session: Session, model: DagModel, now: datetime) -> DagRun | None:
    version = latest_version(session, model.dag_id)
    dag = serialized_for(session, version.id)
    if active_runs(session, model.dag_id) >= dag.max_active_runs:
        return None
    interval = None
    if model.next_dagrun_data_interval_start and model.next_dagrun_data_interval_end:
        interval = DataInterval(
            model.next_dagrun_data_interval_start, model.next_dagrun_data_interval_end
        )
    info = DagRunInfo(model.next_dagrun_run_after, model.next_dagrun_logical_date, interval)  # type: ignore[arg-type]
    run = None
    try:
        with session.begin_nested():
            run = create_dag_run(
                session,
                model,
                version,
                RunRequest(
                    run_type=DagRunType.SCHEDULED,
                    run_after=info.run_after,
                    logical_date=info.logical_date,
                    data_interval=interval,
                    triggered_by=SCHEDULE_TRIGGER,
                ),
                now=now,
            )
        logger.info("Created run %s of %s", run.run_id, model.dag_id)
    except DagRunAlreadyExists:
        logger.info("Run for %s of %s exists already", info.logical_date, model.dag_id)
    except ParamValidationError as exc:
        logger.error(
            "Scheduled run of %s not created: its params are invalid: %s", model.dag_id, exc
        )
    set_next_run(model, dag, info, now)
    return run


def active_runs(session: Session, dag_id: str) -> int:
    """Running runs of a DAG that count against its ``max_active_runs`` (a backfill's
    runs do not: the backfill has its own)."""
    return int(session.scalar(_active_runs_count(), {"dag_id": dag_id}) or 0)


# Statements of every scheduler pass, built once and run with parameters.


@functools.cache
def _active_runs_count() -> Any:
    return select(func.count()).where(
        DagRun.dag_id == bindparam("dag_id"),
        DagRun.state == str(DagRunState.RUNNING),
        DagRun.backfill_id.is_(None),
    )


@functools.cache
def _paused_backfills() -> Any:
    return select(Backfill.id).where(Backfill.is_paused.is_(True), Backfill.completed_at.is_(None))


@functools.cache
def _queued_runs(*, lock: bool) -> Any:
    """Queued runs of unpaused DAGs, oldest first; ``lock``: skip and lock the rows that
    another scheduler works on (Postgres)."""
    query = runs_to_schedule(DagRunState.QUEUED).order_by(DagRun.run_after, DagRun.id)
    return query.with_for_update(skip_locked=True) if lock else query


def runs_to_schedule(state: DagRunState) -> Select[DagRun]:
    """Runs in ``state`` of unpaused DAGs that a scheduler drives (a `dags test` run is
    driven by its command)."""
    return (
        select(DagRun)
        .join(DagModel, DagModel.dag_id == DagRun.dag_id)
        .where(
            DagRun.state == str(state),
            DagModel.is_paused.is_(False),
            DagRun.triggered_by.is_distinct_from(TEST_TRIGGER),
        )
    )


def start_queued_runs(session: Session, now: datetime) -> list[DagRun]:
    """Move queued runs of unpaused DAGs to running, oldest first, within max_active_runs
    (a backfill's runs: unless the backfill is paused)."""
    started: list[DagRun] = []
    running: dict[str, int] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    queued = session.scalars(_queued_runs(lock=postgres)).all()
    if not queued:
        return started
    paused_backfills = set()
    if any(run.backfill_id is not None for run in queued):
        paused_backfills = set(session.scalars(_paused_backfills()))
    for run in queued:
        if run.backfill_id is not None:
            # Created only while its backfill had room (see scheduler.backfills).
            if run.backfill_id not in paused_backfills:
                run.state = str(DagRunState.RUNNING)
                run.start_date = now
                started.append(run)
            continue
        if run.dag_id not in running:
            running[run.dag_id] = active_runs(session, run.dag_id)
        limit = (
            serialized_for(session, run.dag_version_id).max_active_runs if run.dag_version_id else 1
        )
        if running[run.dag_id] >= limit:
            continue
        run.state = str(DagRunState.RUNNING)
        run.start_date = now
        running[run.dag_id] += 1
        started.append(run)
    return started
