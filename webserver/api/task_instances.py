"""Task instances, their tries, their logs and their XComs (read side)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tradewind.models import (
    DagModel,
    DagRun,
    DagVersion,
    Job,
    LogChunk,
    TaskInstance,
    TaskInstanceHistory,
    Trigger,
    XCom,
)
from tradewind.settings import Settings
from tradewind.state import TaskInstanceState
from webserver.api import present, schemas
from webserver.api.common import (
    DbSession,
    Paging,
    bad_request,
    matches,
    not_found,
    order,
    ordering,
    refuse_nul_in_url,
)
from webserver.api.cursors import CURSOR_HELP, cursor_page
from webserver.api.dag_runs import find_run
from webserver.security import Viewer, signing_key

router = APIRouter(
    tags=["TaskInstance"],
    dependencies=[Depends(refuse_nul_in_url)],
    responses=schemas.errors(400, 401, 403),
)
TI = TaskInstanceState

TI_ORDER: dict[str, Any] = {
    "id": TaskInstance.id,
    "state": TaskInstance.state,
    "duration": TaskInstance.duration,
    "start_date": TaskInstance.start_date,
    "end_date": TaskInstance.end_date,
    "map_index": TaskInstance.map_index,
    "try_number": TaskInstance.try_number,
    "logical_date": DagRun.logical_date,
    "run_after": DagRun.run_after,
    "data_interval_start": DagRun.data_interval_start,
    "data_interval_end": DagRun.data_interval_end,
    "operator": TaskInstance.operator,
    "task_id": TaskInstance.task_id,
}
LIVE_STATES = {str(TI.QUEUED), str(TI.RUNNING), str(TI.UP_FOR_RESCHEDULE), str(TI.DEFERRED)}
NO_STATUS = "no_status"


class _Context:
    """What the rows of one page need from elsewhere, loaded once per page."""

    def __init__(self, session: Session, rows: list[Any]) -> None:
        dag_ids = {r.dag_id for r in rows}
        self.names = {
            dag_id: name or dag_id
            for dag_id, name in session.execute(
                select(DagModel.dag_id, DagModel.dag_display_name).where(
                    DagModel.dag_id.in_(dag_ids)
                )
            ).all()
        }
        trigger_ids = {r.trigger_id for r in rows if getattr(r, "trigger_id", None)}
        self.triggers = {
            t.id: t for t in session.scalars(select(Trigger).where(Trigger.id.in_(trigger_ids)))
        }
        job_ids = {t.triggerer_id for t in self.triggers.values() if t.triggerer_id}
        self.jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
        version_ids = {r.dag_version_id for r in rows if r.dag_version_id}
        self.versions = {
            v.id: v
            for v in session.scalars(select(DagVersion).where(DagVersion.id.in_(version_ids)))
        }

    def spec(self, row: Any) -> dict[str, Any]:
        version = self.versions.get(row.dag_version_id or "")
        if version is None:
            return {}
        for spec in version.serialized.get("tasks", []):
            if spec["task_id"] == row.task_id:
                return dict(spec)
        return {}

    def trigger(self, row: TaskInstance) -> schemas.TriggerResponse | None:
        trigger = self.triggers.get(row.trigger_id) if row.trigger_id else None
        if trigger is None:
            return None
        return schemas.TriggerResponse(
            id=trigger.id,
            classpath=trigger.classpath,
            kwargs=json.dumps(trigger.kwargs, sort_keys=True),
            created_date=trigger.created_date,
            triggerer_id=trigger.triggerer_id,
        )

    def triggerer_job(self, row: TaskInstance) -> schemas.JobResponse | None:
        trigger = self.triggers.get(row.trigger_id) if row.trigger_id else None
        job = self.jobs.get(trigger.triggerer_id) if trigger and trigger.triggerer_id else None
        if job is None:
            return None
        return schemas.JobResponse(
            id=job.id,
            state=job.state,
            job_type=job.job_type,
            start_date=job.start_date,
            end_date=job.end_date,
            latest_heartbeat=job.latest_heartbeat,
            executor_class=job.executor_class,
            hostname=job.hostname,
        )

    def version(self, row: Any) -> schemas.DagVersionResponse | None:
        version = self.versions.get(row.dag_version_id or "")
        shown = self.names.get(row.dag_id, row.dag_id)
        return present.version(version, shown) if version is not None else None


def _history_fields(row: Any, context: _Context) -> dict[str, Any]:
    spec = context.spec(row)
    return {
        "task_id": row.task_id,
        "dag_id": row.dag_id,
        "dag_run_id": row.run_id,
        "map_index": row.map_index,
        "start_date": row.start_date,
        "end_date": row.end_date,
        "duration": row.duration,
        "state": schemas.TaskInstanceState(row.state) if row.state else None,
        "try_number": row.try_number,
        "max_tries": row.max_tries,
        "task_display_name": spec.get("task_display_name") or row.task_id,
        "dag_display_name": context.names.get(row.dag_id, row.dag_id),
        "hostname": row.hostname,
        "unixname": row.unixname,
        "pool": row.pool,
        "pool_slots": row.pool_slots,
        "queue": row.queue,
        "priority_weight": row.priority_weight,
        "operator": row.operator,
        "operator_name": spec.get("operator_name") or row.operator,
        "queued_when": row.queued_dttm,
        "scheduled_when": row.scheduled_dttm,
        "pid": row.pid,
        "executor": row.executor,
        "executor_config": "{}",
        "dag_version": context.version(row),
    }


def respond(row: TaskInstance, run: DagRun, context: _Context) -> schemas.TaskInstanceResponse:
    return schemas.TaskInstanceResponse(
        **_history_fields(row, context),
        id=row.id,
        logical_date=run.logical_date,
        run_after=run.run_after,
        note=row.note,
        rendered_map_index=None if row.map_index < 0 else str(row.map_index),
        rendered_fields=row.rendered_fields or {},
        queued_reason=row.queued_reason,
        trigger=context.trigger(row),
        triggerer_job=context.triggerer_job(row),
    )


def _instances(dag_id: str, run_id: str) -> Any:
    query: Any = select(TaskInstance, DagRun).join(
        DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id)
    )
    if dag_id != "~":
        query = query.where(TaskInstance.dag_id == dag_id)
    if run_id != "~":
        query = query.where(TaskInstance.run_id == run_id)
    return query


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
    response_model=schemas.TaskInstanceCollectionResponse,
    responses=schemas.errors(404),
)
def get_task_instances(
    dag_id: str,
    dag_run_id: str,
    session: DbSession,
    _: Viewer,
    paging: Paging,
    task_id: str | None = None,
    state: Annotated[list[str] | None, Query()] = None,
    pool: Annotated[list[str] | None, Query()] = None,
    queue: Annotated[list[str] | None, Query()] = None,
    map_index: Annotated[list[schemas.MapIndex] | None, Query()] = None,
    try_number: Annotated[list[schemas.TryNumber] | None, Query()] = None,
    task_display_name_pattern: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
) -> schemas.TaskInstanceCollectionResponse:
    """Task instances of a run; ``~`` for the DAG or the run means any."""
    if dag_id != "~" and dag_run_id != "~":
        find_run(session, dag_id, dag_run_id)
    query = _instances(dag_id, dag_run_id).where(
        matches(TaskInstance.task_id, task_display_name_pattern)
    )
    if task_id is not None:
        query = query.where(TaskInstance.task_id == task_id)
    if state:
        known = {s.value for s in schemas.TaskInstanceState} | {NO_STATUS, "none"}
        if unknown := [s for s in state if s not in known]:
            raise bad_request(f"Invalid value for state: {', '.join(unknown)}")
        wanted = [s for s in state if s not in (NO_STATUS, "none")]
        condition: Any = TaskInstance.state.in_(wanted)
        if len(wanted) != len(state):
            condition = condition | TaskInstance.state.is_(None)
        query = query.where(condition)
    for column, values in (
        (TaskInstance.pool, pool),
        (TaskInstance.queue, queue),
        (TaskInstance.map_index, map_index),
        (TaskInstance.try_number, try_number),
    ):
        if values:
            query = query.where(column.in_(values))
    sort = ordering(order_by, TI_ORDER, ["map_index"], TaskInstance.id)
    if cursor is not None:
        found = cursor_page(session, query, sort, cursor, paging.limit)
        pairs = [(row["TaskInstance"], row["DagRun"]) for row in found.rows]
        context = _Context(session, [ti for ti, _run in pairs])
        return schemas.TaskInstanceCollectionResponse(
            task_instances=[respond(ti, run, context) for ti, run in pairs], **found.fields()
        )
    query = query.order_by(*sort.clauses())
    total = session.scalar(select(_count(query)))
    page = session.execute(query.limit(paging.limit).offset(paging.offset)).all()
    context = _Context(session, [row for row, _run in page])
    return schemas.TaskInstanceCollectionResponse(
        task_instances=[respond(row, run, context) for row, run in page],
        total_entries=int(total or 0),
    )


def _count(query: Select[Any]) -> Any:
    from sqlalchemy import func

    return select(func.count()).select_from(query.order_by(None).subquery()).scalar_subquery()


def find_instance(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int
) -> tuple[TaskInstance, DagRun]:
    found = session.execute(
        _instances(dag_id, run_id).where(
            TaskInstance.task_id == task_id, TaskInstance.map_index == map_index
        )
    ).first()
    if found is None:
        raise not_found(
            f"The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: "
            f"`{task_id}` and map_index: `{map_index}` was not found"
        )
    return found[0], found[1]


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
    response_model=schemas.TaskInstanceResponse,
    responses=schemas.errors(404),
)
def get_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, session: DbSession, _: Viewer
) -> schemas.TaskInstanceResponse:
    row, run = find_instance(session, dag_id, dag_run_id, task_id, -1)
    return respond(row, run, _Context(session, [row]))


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries",
    response_model=schemas.TaskInstanceHistoryCollectionResponse,
    responses=schemas.errors(404),
)
def get_task_instance_tries(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    session: DbSession,
    _: Viewer,
    map_index: Annotated[schemas.MapIndex, Query()] = -1,
) -> schemas.TaskInstanceHistoryCollectionResponse:
    """Every try of an instance: the archived ones, then the current one."""
    row, _run = find_instance(session, dag_id, dag_run_id, task_id, map_index)
    earlier = list(
        session.scalars(
            select(TaskInstanceHistory)
            .where(TaskInstanceHistory.task_instance_id == row.id)
            .order_by(TaskInstanceHistory.try_number)
        )
    )
    rows: list[Any] = [*earlier, row] if row.try_number > 0 else earlier
    context = _Context(session, rows)
    tries = [schemas.TaskInstanceHistoryResponse(**_history_fields(r, context)) for r in rows]
    return schemas.TaskInstanceHistoryCollectionResponse(
        task_instances=tries, total_entries=len(tries)
    )


# --- logs -------------------------------------------------------------------------------------

_LOG_AUDIENCE = "tradewind-log"


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
    response_model=schemas.TaskInstancesLogResponse,
    responses=schemas.errors(404),
)
def get_log(
    request: Request,
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    try_number: Annotated[schemas.TryNumber, Path()],
    session: DbSession,
    _: Viewer,
    full_content: bool = False,
    map_index: Annotated[schemas.MapIndex, Query()] = -1,
    token: str | None = None,
) -> schemas.TaskInstancesLogResponse:
    """The log lines of one try, as shipped while it ran. While the try runs, the answer
    carries a continuation token: pass it back to get only the lines added since."""
    row, _run = find_instance(session, dag_id, dag_run_id, task_id, map_index)
    position = None if full_content else token
    lines, next_token = read_log(session, request.app.state.settings, row, try_number, position)
    return schemas.TaskInstancesLogResponse(content=lines, continuation_token=next_token)


def read_log(
    session: Session, settings: Settings, row: TaskInstance, try_number: int, token: str | None
) -> tuple[list[str], str | None]:
    """The lines of one try's log after the position ``token`` names (all without one),
    and, while the try may still write, the token that continues after these lines. The
    API's log route and the UI's live log both read through here."""
    if try_number < 1 or try_number > row.try_number:
        raise not_found("TaskInstance not found")
    after = 0
    if token is not None:
        try:
            claims = jwt.decode(
                token, signing_key(settings), algorithms=["HS512"], audience=_LOG_AUDIENCE
            )
            after = int(claims["log_pos"])
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            raise bad_request(
                "Bad Signature. Please use only the tokens provided by the API."
            ) from None
    chunks = session.execute(
        select(LogChunk.id, LogChunk.content)
        .where(
            LogChunk.dag_id == row.dag_id,
            LogChunk.run_id == row.run_id,
            LogChunk.task_id == row.task_id,
            LogChunk.map_index == row.map_index,
            LogChunk.try_number == try_number,
            LogChunk.id > after,
        )
        .order_by(LogChunk.id)
    ).all()
    lines = "".join(content for _id, content in chunks).splitlines()
    last = chunks[-1][0] if chunks else after
    if row.try_number != try_number or row.state not in LIVE_STATES:
        return lines, None
    following = jwt.encode(
        {"log_pos": last, "aud": _LOG_AUDIENCE}, signing_key(settings), algorithm="HS512"
    )
    return lines, following


# --- XCom -------------------------------------------------------------------------------------

XCOM_ORDER: dict[str, Any] = {
    "dag_id": XCom.dag_id,
    "task_id": XCom.task_id,
    "run_id": XCom.run_id,
    "map_index": XCom.map_index,
    "key": XCom.key,
    "timestamp": XCom.timestamp,
}


def _xcoms(dag_id: str, run_id: str, task_id: str) -> Any:
    query: Any = select(XCom, DagRun).join(DagRun, DagRun.id == XCom.dag_run_id)
    for column, value in ((XCom.dag_id, dag_id), (XCom.run_id, run_id), (XCom.task_id, task_id)):
        if value != "~":
            query = query.where(column == value)
    return query


def _xcom_fields(row: XCom, run: DagRun, names: dict[str, str]) -> dict[str, Any]:
    return {
        "key": row.key,
        "timestamp": row.timestamp,
        "logical_date": run.logical_date,
        "map_index": row.map_index,
        "task_id": row.task_id,
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "dag_display_name": names.get(row.dag_id, row.dag_id),
        "task_display_name": row.task_id,
        "run_after": run.run_after,
    }


def _names(session: Session, dag_ids: set[str]) -> dict[str, str]:
    rows = session.execute(
        select(DagModel.dag_id, DagModel.dag_display_name).where(DagModel.dag_id.in_(dag_ids))
    ).all()
    return {dag_id: name or dag_id for dag_id, name in rows}


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
    response_model=schemas.XComCollectionResponse,
    tags=["XCom"],
)
def get_xcom_entries(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    session: DbSession,
    _: Viewer,
    paging: Paging,
    xcom_key: str | None = None,
    map_index: Annotated[schemas.MapIndex | None, Query()] = None,
    xcom_key_pattern: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> schemas.XComCollectionResponse:
    query = _xcoms(dag_id, dag_run_id, task_id).where(matches(XCom.key, xcom_key_pattern))
    if xcom_key is not None:
        query = query.where(XCom.key == xcom_key)
    if map_index is not None:
        query = query.where(XCom.map_index == map_index)
    query = order(
        query, order_by, XCOM_ORDER, ["dag_id", "task_id", "run_id", "map_index", "key"], XCom.id
    )
    total = session.scalar(select(_count(query)))
    page = session.execute(query.limit(paging.limit).offset(paging.offset)).all()
    names = _names(session, {row.dag_id for row, _run in page})
    return schemas.XComCollectionResponse(
        xcom_entries=[schemas.XComResponse(**_xcom_fields(r, run, names)) for r, run in page],
        total_entries=int(total or 0),
    )


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    response_model=schemas.XComResponseNative,
    responses=schemas.errors(404),
    tags=["XCom"],
)
def get_xcom_entry(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    xcom_key: str,
    session: DbSession,
    _: Viewer,
    map_index: Annotated[schemas.MapIndex, Query()] = -1,
    deserialize: bool = False,
    stringify: bool = False,
) -> schemas.XComResponseNative:
    """One XCom value: native JSON, or its Python repr with ``stringify=true``."""
    found = session.execute(
        _xcoms(dag_id, dag_run_id, task_id).where(XCom.key == xcom_key, XCom.map_index == map_index)
    ).first()
    if found is None:
        raise not_found(f"XCom entry with key: `{xcom_key}` not found")
    row, run = found
    names = _names(session, {row.dag_id})
    value = repr(row.value) if stringify else row.value
    return schemas.XComResponseNative(**_xcom_fields(row, run, names), value=value)


# Declared last: ".../{task_id}/tries", "/logs/..." and "/xcomEntries" match first.
@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
    response_model=schemas.TaskInstanceResponse,
    responses=schemas.errors(404),
)
def get_mapped_task_instance(
    dag_id: str,
    dag_run_id: str,
    task_id: str,
    map_index: Annotated[schemas.MapIndex, Path()],
    session: DbSession,
    _: Viewer,
) -> schemas.TaskInstanceResponse:
    row, run = find_instance(session, dag_id, dag_run_id, task_id, map_index)
    return respond(row, run, _Context(session, [row]))


__all__ = ["router"]
