"""Marking and clearing task instances, and clearing whole runs (the user role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind import clearing
from tradewind.models import DagRun, DagVersion, TaskInstance
from tradewind.models.base import utcnow
from tradewind.state import DagRunState, TaskInstanceState
from webserver.api import schemas
from webserver.api.common import DbSession, bad_request, conflict, refuse_nul_in_url
from webserver.api.dag_runs import find_run
from webserver.api.dag_runs import respond as respond_run
from webserver.api.dags import check_dag_exists
from webserver.api.task_instances import _Context, find_instance, respond
from webserver.security import UserRole

router = APIRouter(
    tags=["TaskInstance"],
    dependencies=[Depends(refuse_nul_in_url)],
    responses=schemas.errors(400, 401, 403),
)
TI = TaskInstanceState


def run_tasks(session: Session, run: DagRun) -> dict[str, dict[str, Any]]:
    version = session.get(DagVersion, run.dag_version_id) if run.dag_version_id else None
    specs = version.serialized.get("tasks", []) if version is not None else []
    return {spec["task_id"]: spec for spec in specs}


def runs_around(session: Session, run: DagRun, *, past: bool, future: bool) -> list[DagRun]:
    """The run, and with ``past``/``future`` the DAG's runs before/after it by logical
    date (Airflow's include_past / include_future)."""
    runs = [run]
    if run.logical_date is None or not (past or future):
        return runs
    query = select(DagRun).where(DagRun.dag_id == run.dag_id, DagRun.id != run.id)
    if past and not future:
        query = query.where(DagRun.logical_date < run.logical_date)
    elif future and not past:
        query = query.where(DagRun.logical_date > run.logical_date)
    return runs + list(session.scalars(query.where(DagRun.logical_date.is_not(None))))


def _collection(session: Session, rows: list[TaskInstance]) -> list[schemas.TaskInstanceResponse]:
    context = _Context(session, rows)
    runs = {
        (r.dag_id, r.run_id): r
        for r in session.scalars(
            select(DagRun).where(DagRun.run_id.in_({row.run_id for row in rows}))
        )
    }
    return [respond(row, runs[(row.dag_id, row.run_id)], context) for row in rows]


@router.patch(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
    response_model=schemas.TaskInstanceCollectionResponse,
    responses=schemas.errors(404, 409),
)
def patch_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    body: schemas.PatchTaskInstanceBody,
    session: DbSession,
    _: UserRole,
    map_index: Annotated[schemas.MapIndex, Query()] = -1,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> schemas.TaskInstanceCollectionResponse:
    """Mark an instance (and, if asked, its relatives) success, failed or skipped, and/or
    set its note. Answers with every instance it changed."""
    fields = set(body.model_fields_set) & {"new_state", "note"}
    if update_mask is not None:
        if unknown := set(update_mask) - {"new_state", "note"}:
            raise bad_request(f"Invalid field(s) in update_mask: {', '.join(sorted(unknown))}")
        fields &= set(update_mask)
    row, run = find_instance(session, dag_id, dag_run_id, task_id, map_index)
    changed = [row]
    if "new_state" in fields and body.new_state is not None:
        state = TI(body.new_state.value)
        if row.state == str(state):
            raise conflict(f"Task id {task_id} is already in {state} state")
        tasks = run_tasks(session, run)
        chosen = clearing.relatives(
            tasks,
            [task_id],
            upstream=body.include_upstream,
            downstream=body.include_downstream,
        )
        runs = runs_around(session, run, past=body.include_past, future=body.include_future)
        changed = list(
            session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id.in_([r.run_id for r in runs]),
                    TaskInstance.task_id.in_(chosen),
                    (TaskInstance.task_id != task_id)
                    | (TaskInstance.map_index == map_index)
                    | (TaskInstance.run_id != dag_run_id),
                )
            )
        )
        changed = [r for r in changed if r.state != str(state)] or [row]
        clearing.mark(session, changed, state, now=utcnow())
    if "note" in fields:
        row.note = body.note
    session.commit()
    return schemas.TaskInstanceCollectionResponse(
        task_instances=_collection(session, changed), total_entries=len(changed)
    )


@router.post(
    "/dags/{dag_id}/clearTaskInstances",
    response_model=schemas.TaskInstanceCollectionResponse,
    responses=schemas.errors(404, 409),
)
def post_clear_task_instances(
    dag_id: str, body: schemas.ClearTaskInstancesBody, session: DbSession, _: UserRole
) -> schemas.TaskInstanceCollectionResponse:
    """Clear instances of a DAG so they run again (``dry_run``, the default, only says
    which). By default only failed ones, in every run unless ``dag_run_id`` is given."""
    check_dag_exists(session, dag_id)
    runs_query = select(DagRun).where(DagRun.dag_id == dag_id)
    if body.dag_run_id is not None:
        run = find_run(session, dag_id, body.dag_run_id)
        runs = runs_around(session, run, past=body.include_past, future=body.include_future)
    else:
        if body.start_date is not None:
            runs_query = runs_query.where(DagRun.logical_date >= body.start_date)
        if body.end_date is not None:
            runs_query = runs_query.where(DagRun.logical_date <= body.end_date)
        runs = list(session.scalars(runs_query))
    rows = _select(session, dag_id, runs, body)
    if body.prevent_running_task and any(r.state == str(TI.RUNNING) for r in rows):
        raise conflict("Some of the chosen task instances are running; not clearing them")
    if not body.dry_run and rows:
        clearing.clear(session, rows, now=utcnow(), reset_runs=body.reset_dag_runs)
        session.commit()
    return schemas.TaskInstanceCollectionResponse(
        task_instances=_collection(session, rows), total_entries=len(rows)
    )


def _select(
    session: Session, dag_id: str, runs: list[DagRun], body: schemas.ClearTaskInstancesBody
) -> list[TaskInstance]:
    if not runs:
        return []
    query = select(TaskInstance).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_([r.run_id for r in runs])
    )
    if body.task_ids:
        names = {t for t in body.task_ids if isinstance(t, str)}
        pairs = {(t[0], int(t[1])) for t in body.task_ids if not isinstance(t, str)}
        named = names | {task for task, _ in pairs}
        related = clearing.relatives(
            run_tasks(session, runs[0]),
            named,
            upstream=body.include_upstream,
            downstream=body.include_downstream,
        )
        whole = names | (related - named)  # every map index of these
        rows = [
            r
            for r in session.scalars(query)
            if r.task_id in whole or (r.task_id, r.map_index) in pairs
        ]
    else:
        rows = list(session.scalars(query))
    if body.only_failed:
        rows = [r for r in rows if r.state in (str(TI.FAILED), str(TI.UPSTREAM_FAILED))]
    if body.only_running:
        rows = [r for r in rows if r.state == str(TI.RUNNING)]
    return sorted(rows, key=lambda r: (r.run_id, r.task_id, r.map_index))


@router.post(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/clear",
    responses=schemas.errors(404),
    tags=["DagRun"],
)
def clear_dag_run(
    dag_id: str, dag_run_id: str, body: schemas.DAGRunClearBody, session: DbSession, _: UserRole
) -> schemas.ClearTaskInstanceCollectionResponse | schemas.DAGRunResponse:
    """Clear a run's instances (all, or only failed ones): with ``dry_run`` (the default)
    the instances that would be cleared, otherwise the run, queued again."""
    run = find_run(session, dag_id, dag_run_id)
    rows = list(
        session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run_id
            )
        )
    )
    if body.only_failed:
        rows = [r for r in rows if r.state in (str(TI.FAILED), str(TI.UPSTREAM_FAILED))]
    if body.dry_run:
        return schemas.ClearTaskInstanceCollectionResponse(
            task_instances=_collection(session, rows), total_entries=len(rows)
        )
    clearing.clear(session, rows, now=utcnow())
    if body.note is not None:
        run.note = body.note
    if not rows:  # nothing to clear: the run is queued again all the same
        run.state = str(DagRunState.QUEUED)
    session.commit()
    return respond_run(session, run)
