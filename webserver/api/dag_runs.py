"""DAG runs: trigger, read, list, mark, delete (`/api/v2/dags/{dag_id}/dagRuns...`)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tradewind.dagruns import RunRequest, create_dag_run, set_run_state
from tradewind.errors import DagRunAlreadyExists, DagRunIdError, ParamValidationError
from tradewind.models import DagModel, DagRun, DagVersion, XCom
from tradewind.models.base import utcnow
from tradewind.schedules import DataInterval
from tradewind.state import TERMINAL_RUN_STATES, DagRunState, DagRunType
from webserver.api import present, schemas
from webserver.api.common import (
    DbSession,
    Paging,
    bad_request,
    collection,
    conflict,
    matches,
    not_found,
    ordering,
    paginate_rows,
    refuse_nul_in_url,
)
from webserver.api.cursors import CURSOR_HELP, cursor_page
from webserver.api.dags import check_dag_exists, find_dag, latest_version
from webserver.security import UserRole, Viewer

router = APIRouter(
    tags=["DagRun"],
    dependencies=[Depends(refuse_nul_in_url)],
    responses=schemas.errors(400, 401, 403),
)

RUN_ORDER: dict[str, Any] = {
    "id": DagRun.id,
    "state": DagRun.state,
    "dag_id": DagRun.dag_id,
    "run_id": DagRun.run_id,
    "dag_run_id": DagRun.run_id,
    "logical_date": DagRun.logical_date,
    "run_after": DagRun.run_after,
    "start_date": DagRun.start_date,
    "end_date": DagRun.end_date,
    "updated_at": DagRun.updated_at,
    "conf": DagRun.conf,
}
DELETABLE = {str(DagRunState.QUEUED), str(DagRunState.SUCCESS), str(DagRunState.FAILED)}


def find_run(session: Session, dag_id: str, run_id: str) -> DagRun:
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        raise not_found(f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found")
    return run


# Runs with their DAG's display name and version: one query for a run or a whole page.
RUN_ROWS: Select[Any] = (
    select(*present.DAG_RUN_COLUMNS)
    .outerjoin(DagModel, DagModel.dag_id == DagRun.dag_id)
    .outerjoin(DagVersion, DagVersion.id == DagRun.dag_version_id)
)


def respond(session: Session, run: DagRun) -> schemas.DAGRunResponse:
    row = session.execute(RUN_ROWS.where(DagRun.id == run.id)).one()
    return schemas.DAGRunResponse.model_validate(present.dag_run(row._asdict()))


@router.post(
    "/dags/{dag_id}/dagRuns",
    response_model=schemas.DAGRunResponse,
    responses=schemas.errors(404, 409),
)
def trigger_dag_run(
    dag_id: str, body: schemas.TriggerDAGRunPostBody, session: DbSession, principal: UserRole
) -> schemas.DAGRunResponse:
    """Queue a manual run (200, as Airflow answers). Its conf is checked against the
    DAG's params; a paused DAG's run waits until the DAG is unpaused."""
    model = find_dag(session, dag_id)
    if model.is_stale:
        raise not_found(f"The Dag with ID: `{dag_id}` was not found (its file is gone)")
    version = latest_version(session, dag_id)
    if version is None:
        raise bad_request(f"The Dag with ID: `{dag_id}` has never been parsed without errors")
    now = utcnow()
    interval = None
    if body.data_interval_start is not None and body.data_interval_end is not None:
        interval = DataInterval(body.data_interval_start, body.data_interval_end)
    request = RunRequest(
        run_type=DagRunType.MANUAL,
        run_after=body.run_after or body.logical_date or now,
        logical_date=body.logical_date,
        data_interval=interval if body.logical_date is not None else None,
        run_id=body.dag_run_id,
        conf=body.conf or {},
        triggered_by="rest_api",
        triggering_user_name=principal.username,
        note=body.note,
    )
    try:
        run = create_dag_run(session, model, version, request, now=now)
    except ParamValidationError as exc:
        raise bad_request(f"Invalid conf for {dag_id}: {exc}") from None
    except DagRunIdError as exc:
        raise bad_request(str(exc)) from None
    except DagRunAlreadyExists as exc:
        raise conflict(str(exc)) from None
    # The run as it was created (queued), as Airflow answers: read back after the
    # commit, a scheduler woken by it may already have moved it on.
    created = respond(session, run)
    session.commit()
    return created


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}",
    response_model=schemas.DAGRunResponse,
    responses=schemas.errors(404),
)
def get_dag_run(
    dag_id: str, dag_run_id: str, session: DbSession, _: Viewer
) -> schemas.DAGRunResponse:
    return respond(session, find_run(session, dag_id, dag_run_id))


DateQuery = Annotated[datetime | None, Query()]


@router.get(
    "/dags/{dag_id}/dagRuns",
    response_model=schemas.DAGRunCollectionResponse,
    responses=schemas.errors(404),
)
def get_dag_runs(
    dag_id: str,
    session: DbSession,
    _: Viewer,
    paging: Paging,
    state: Annotated[list[schemas.DagRunState] | None, Query()] = None,
    run_type: Annotated[list[schemas.DagRunType] | None, Query()] = None,
    run_id_pattern: str | None = None,
    dag_id_pattern: str | None = None,
    logical_date_gte: DateQuery = None,
    logical_date_lte: DateQuery = None,
    logical_date_gt: DateQuery = None,
    logical_date_lt: DateQuery = None,
    start_date_gte: DateQuery = None,
    start_date_lte: DateQuery = None,
    end_date_gte: DateQuery = None,
    end_date_lte: DateQuery = None,
    run_after_gte: DateQuery = None,
    run_after_lte: DateQuery = None,
    updated_at_gte: DateQuery = None,
    updated_at_lte: DateQuery = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
) -> schemas.DAGRunCollectionResponse:
    """Runs of a DAG, or of every DAG with ``dag_id`` ``~``."""
    query = RUN_ROWS
    if dag_id != "~":
        check_dag_exists(session, dag_id)
        query = query.where(DagRun.dag_id == dag_id)
    conditions: list[ColumnElement[bool]] = [
        matches(DagRun.run_id, run_id_pattern),
        matches(DagRun.dag_id, dag_id_pattern),
    ]
    if state:
        conditions.append(DagRun.state.in_([str(s) for s in state]))
    if run_type:
        conditions.append(DagRun.run_type.in_([str(t) for t in run_type]))
    for column, low, high, strict_low, strict_high in (
        (DagRun.logical_date, logical_date_gte, logical_date_lte, logical_date_gt, logical_date_lt),
        (DagRun.start_date, start_date_gte, start_date_lte, None, None),
        (DagRun.end_date, end_date_gte, end_date_lte, None, None),
        (DagRun.run_after, run_after_gte, run_after_lte, None, None),
        (DagRun.updated_at, updated_at_gte, updated_at_lte, None, None),
    ):
        if low is not None:
            conditions.append(column >= _aware(low, "gte"))
        if high is not None:
            conditions.append(column <= _aware(high, "lte"))
        if strict_low is not None:
            conditions.append(column > _aware(strict_low, "gt"))
        if strict_high is not None:
            conditions.append(column < _aware(strict_high, "lt"))
    query = query.where(*conditions)
    sort = ordering(order_by, RUN_ORDER, ["id"], DagRun.id)
    if cursor is not None:
        page = cursor_page(session, query, sort, cursor, paging.limit)
        runs = [present.dag_run(row) for row in page.rows]
        return collection(schemas.DAGRunCollectionResponse, dag_runs=runs, **page.fields())  # type: ignore[return-value]
    rows, total = paginate_rows(session, query.order_by(*sort.clauses()), paging)
    runs = [present.dag_run(row) for row in rows]
    return collection(schemas.DAGRunCollectionResponse, dag_runs=runs, total_entries=total)  # type: ignore[return-value]


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise bad_request(f"*_{name}: give a time zone (e.g. 2024-01-01T00:00:00+00:00)")
    return value


@router.patch(
    "/dags/{dag_id}/dagRuns/{dag_run_id}",
    response_model=schemas.DAGRunResponse,
    responses=schemas.errors(404),
)
def patch_dag_run(
    dag_id: str,
    dag_run_id: str,
    body: schemas.DAGRunPatchBody,
    session: DbSession,
    _: UserRole,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> schemas.DAGRunResponse:
    """Mark a run success, failed or queued, and/or set its note."""
    allowed = {"state", "note"}
    mask = set(update_mask) if update_mask is not None else body.model_fields_set
    if unknown := mask - allowed:
        raise bad_request(f"Invalid field(s) in update_mask: {', '.join(sorted(unknown))}")
    run = find_run(session, dag_id, dag_run_id)
    if "state" in mask and body.state is not None:
        set_run_state(session, run, DagRunState(body.state.value), now=utcnow())
    if "note" in mask:
        run.note = body.note
    session.commit()
    return respond(session, run)


@router.delete(
    "/dags/{dag_id}/dagRuns/{dag_run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=schemas.errors(404, 409),
)
def delete_dag_run(dag_id: str, dag_run_id: str, session: DbSession, _: UserRole) -> Response:
    run = find_run(session, dag_id, dag_run_id)
    if run.state not in DELETABLE:
        raise conflict(
            f"The DagRun with dag_id: `{dag_id}` and run_id: `{dag_run_id}` cannot be deleted "
            f"in {run.state} state"
        )
    session.delete(run)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


WAIT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One JSON object per line: the run's state now and after every "
        "interval, the last with the finished state (and the results asked for)",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/wait",
    tags=["experimental"],
    response_class=StreamingResponse,
    responses={**WAIT_STREAM, **schemas.errors(404)},
)
async def wait_dag_run_until_finished(
    request: Request,
    dag_id: str,
    dag_run_id: str,
    _: Viewer,
    interval: Annotated[float, Query(gt=0, le=3600, description="Seconds between lines")],
    result: Annotated[
        list[str] | None,
        Query(description="Tasks whose return values to add once the run has finished"),
    ] = None,
) -> StreamingResponse:
    """Stream the run's state (NDJSON) until it finishes; a 404 before streaming if
    there is no such run. With ``result``, the last line has ``results``: each task's
    return value, or the list of them for a mapped task. Experimental, as in Airflow."""
    factory = request.app.state.factory

    def look() -> tuple[bool, bytes]:
        with factory() as session:
            run = find_run(session, dag_id, dag_run_id)
            line: dict[str, Any] = {"state": run.state}
            finished = run.state in TERMINAL_RUN_STATES
            if finished and result:
                line["results"] = _results(session, run.id, result)
        return finished, json.dumps(line).encode() + b"\n"

    finished, first = await run_in_threadpool(look)

    async def lines() -> AsyncIterator[bytes]:
        done, line = finished, first
        yield line
        while not done:
            await asyncio.sleep(interval)
            try:
                done, line = await run_in_threadpool(look)
            except HTTPException:  # the run was deleted while we waited
                return
            yield line

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _results(session: Session, run_pk: int, task_ids: list[str]) -> dict[str, Any]:
    rows = session.execute(
        select(XCom.task_id, XCom.map_index, XCom.value)
        .where(XCom.dag_run_id == run_pk, XCom.key == "return_value", XCom.task_id.in_(task_ids))
        .order_by(XCom.task_id, XCom.map_index)
    ).all()
    results: dict[str, Any] = {}
    for task_id, group in itertools.groupby(rows, key=lambda row: row.task_id):
        values = list(group)
        mapped = not (len(values) == 1 and values[0].map_index < 0)
        results[task_id] = [v.value for v in values] if mapped else values[0].value
    return results
