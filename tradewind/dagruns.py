"""Creating DAG runs and their task instances (data functions; the caller commits).

Every way a run comes to exist (the scheduler, the REST API, `dags trigger`,
`dags test`) goes through `create_dag_run`, so params are validated and task instances
created the same way everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from tradewind.errors import DagNotFound, DagRunAlreadyExists, DagRunIdError
from tradewind.models import DagModel, DagRun, DagVersion, TaskInstance
from tradewind.schedules import DataInterval
from tradewind.sdk.params import params_from_dump
from tradewind.serialization import SerializedDag, TaskSpec
from tradewind.state import FINISHED_STATES, DagRunState, DagRunType, TaskInstanceState
from tradewind.wakeup import wake_scheduler

TI = TaskInstanceState


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to create: everything but the DAG itself."""

    run_type: DagRunType
    run_after: datetime
    logical_date: datetime | None = None
    data_interval: DataInterval | None = None
    run_id: str | None = None
    conf: Mapping[str, Any] | None = None
    triggered_by: str | None = None
    triggering_user_name: str | None = None
    note: str | None = None


def latest_version(session: Session, dag_id: str) -> DagVersion:
    version = session.scalar(
        select(DagVersion)
        .where(DagVersion.dag_id == dag_id)
        .order_by(DagVersion.version_number.desc())
        .limit(1)
    )
    if version is None:
        raise DagNotFound(f"DAG {dag_id!r} has never been parsed successfully")
    return version


RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")  # Airflow's allowed_run_id_pattern
MAX_RUN_ID_LENGTH = 250


def check_run_id(run_id: str) -> None:
    if not RUN_ID_PATTERN.match(run_id) or len(run_id) > MAX_RUN_ID_LENGTH:
        raise DagRunIdError(
            f"run id {run_id!r} is not allowed: use at most {MAX_RUN_ID_LENGTH} letters, "
            "digits and _ . ~ : + -"
        )


def generate_run_id(
    run_type: DagRunType, logical_date: datetime | None, run_after: datetime
) -> str:
    return run_type.run_id_for(logical_date or run_after)


def create_dag_run(
    session: Session,
    dag_model: DagModel,
    version: DagVersion,
    request: RunRequest,
    *,
    now: datetime,
) -> DagRun:
    """Insert a queued run and one task instance per task (mapped ones at map_index -1).

    Raises `ParamValidationError` if the conf does not satisfy the DAG's params and
    `DagRunAlreadyExists` if the run id or logical date is taken.
    """
    serialized = SerializedDag.from_dict(version.serialized)
    conf = dict(request.conf or {})
    params_from_dump(serialized.params).resolve(conf)
    run_id = request.run_id or generate_run_id(
        request.run_type, request.logical_date, request.run_after
    )
    check_run_id(run_id)
    _check_unique(session, dag_model.dag_id, run_id, request.logical_date)
    interval = request.data_interval
    if interval is None and request.logical_date is not None:
        interval = serialized.schedule.infer_manual_data_interval(run_after=request.logical_date)
    run = DagRun(
        dag_id=dag_model.dag_id,
        run_id=run_id,
        logical_date=request.logical_date,
        run_after=request.run_after,
        data_interval_start=interval.start if interval else None,
        data_interval_end=interval.end if interval else None,
        run_type=str(request.run_type),
        state=str(DagRunState.QUEUED),
        triggered_by=request.triggered_by,
        triggering_user_name=request.triggering_user_name,
        conf=conf,
        queued_at=now,
        dag_version_id=version.id,
        note=request.note,
    )
    session.add(run)
    session.flush()
    # A plain insert run once per task (an executemany): the ORM's flush of as many
    # objects sent Postgres one statement with a VALUES row per task, which the driver
    # parsed anew each time (some 240 kB and 7,400 parameters for 200 tasks) and which
    # took most of the 45 ms that such a run took to create.
    rows = [task_instance_row(run, spec, version.id) for spec in serialized.tasks.values()]
    if rows:
        session.execute(insert(cast(Table, TaskInstance.__table__)), rows)
    wake_scheduler(session, run.id)
    return run


def set_run_state(session: Session, run: DagRun, state: DagRunState, *, now: datetime) -> None:
    """Mark a run as a user does (Airflow's "mark success/failed", or "queued" to let it
    be scheduled again). Success marks every unfinished task success; failed fails the
    tries in progress and skips what had not started; running tries notice at their next
    heartbeat and stop."""
    unfinished = TaskInstance.state.is_(None) | TaskInstance.state.not_in(
        [str(s) for s in FINISHED_STATES]
    )
    of_run = (TaskInstance.dag_id == run.dag_id) & (TaskInstance.run_id == run.run_id)
    if state is DagRunState.SUCCESS:
        session.execute(
            update(TaskInstance)
            .where(of_run, unfinished)
            .values(state=str(TI.SUCCESS), end_date=now)
        )
    elif state is DagRunState.FAILED:
        in_progress = [
            str(s)
            for s in (TI.QUEUED, TI.RUNNING, TI.UP_FOR_RETRY, TI.UP_FOR_RESCHEDULE, TI.DEFERRED)
        ]
        session.execute(
            update(TaskInstance)
            .where(of_run, TaskInstance.state.in_(in_progress))
            .values(state=str(TI.FAILED), end_date=now)
        )
        session.execute(
            update(TaskInstance)
            .where(of_run, unfinished)
            .values(state=str(TI.SKIPPED), end_date=now)
        )
    run.state = str(state)
    if state is DagRunState.QUEUED:
        run.queued_at, run.end_date = now, None
    else:
        run.end_date = now
    wake_scheduler(session, run.id)


def new_task_instance(
    run: DagRun, spec: TaskSpec, version_id: str | None, map_index: int = -1
) -> TaskInstance:
    return TaskInstance(**task_instance_row(run, spec, version_id, map_index))


def task_instance_row(
    run: DagRun, spec: TaskSpec, version_id: str | None, map_index: int = -1
) -> dict[str, Any]:
    """The columns of a new instance of ``spec`` in ``run``; the others take their
    defaults (a new id among them)."""
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "task_id": spec.task_id,
        "map_index": map_index,
        "try_number": 0,
        "max_tries": spec.retry_policy.retries,
        "state": None,
        "pool": spec.pool,
        "pool_slots": spec.pool_slots,
        "queue": spec.queue,
        "priority_weight": spec.weight,
        "operator": spec.operator,
        "custom_operator_name": spec.operator_name,
        "executor_config": dict(spec.executor_config),
        "dag_version_id": version_id,
    }


def _check_unique(
    session: Session, dag_id: str, run_id: str, logical_date: datetime | None
) -> None:
    clash = session.scalar(
        select(DagRun.run_id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    )
    if clash is not None:
        raise DagRunAlreadyExists(f"DAG {dag_id!r} already has a run with run_id {run_id!r}")
    if logical_date is not None:
        clash = session.scalar(
            select(DagRun.run_id).where(
                DagRun.dag_id == dag_id, DagRun.logical_date == logical_date
            )
        )
        if clash is not None:
            raise DagRunAlreadyExists(
                f"DAG {dag_id!r} already has a run ({clash!r}) for logical date "
                f"{logical_date.isoformat()}"
            )
