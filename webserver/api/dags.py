"""DAGs and their tasks: `/api/v2/dags...`."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tradewind.dags import set_paused
from tradewind.models import DagModel, DagRun, DagTag, DagVersion
from webserver.api import present, schemas
from webserver.api.common import (
    DbSession,
    Paging,
    bad_request,
    collection_body,
    matches,
    not_found,
    order,
    paginate_rows,
    refuse_nul_in_url,
    starts_with,
)
from webserver.security import UserRole, Viewer

router = APIRouter(
    tags=["DAG"],
    dependencies=[Depends(refuse_nul_in_url)],
    responses=schemas.errors(400, 401, 403),
)

DAG_ORDER: dict[str, Any] = {
    "dag_id": DagModel.dag_id,
    "dag_display_name": func.coalesce(DagModel.dag_display_name, DagModel.dag_id),
    "next_dagrun": DagModel.next_dagrun_run_after,
    "last_parsed_time": DagModel.last_parsed_time,
}


def find_dag(session: Session, dag_id: str) -> DagModel:
    model = session.get(DagModel, dag_id)
    if model is None:
        raise not_found(f"The Dag with ID: `{dag_id}` was not found")
    return model


def check_dag_exists(session: Session, dag_id: str) -> None:
    """404 unless the DAG exists (without loading it)."""
    if session.scalar(select(DagModel.dag_id).where(DagModel.dag_id == dag_id)) is None:
        raise not_found(f"The Dag with ID: `{dag_id}` was not found")


def dag_row(session: Session, dag_id: str) -> Row[Any]:
    """A DAG as `present.dag` reads it (404 if there is none)."""
    row = session.execute(
        select(*present.DAG_COLUMNS).where(DagModel.dag_id == dag_id)
    ).one_or_none()
    if row is None:
        raise not_found(f"The Dag with ID: `{dag_id}` was not found")
    return row


def latest_version(session: Session, dag_id: str) -> DagVersion | None:
    return session.scalar(
        select(DagVersion)
        .where(DagVersion.dag_id == dag_id)
        .order_by(DagVersion.version_number.desc())
        .limit(1)
    )


@router.get("/dags", response_model=schemas.DAGCollectionResponse)
async def get_dags(
    request: Request,
    _: Viewer,
    paging: Paging,
    tags: Annotated[list[str] | None, Query()] = None,
    tags_match_mode: schemas.TagsMatchMode = schemas.TagsMatchMode.ANY,
    owners: Annotated[list[str] | None, Query()] = None,
    dag_id_pattern: str | None = None,
    dag_id_prefix_pattern: str | None = None,
    dag_display_name_pattern: str | None = None,
    dag_display_name_prefix_pattern: str | None = None,
    exclude_stale: bool = True,
    paused: bool | None = None,
    has_import_errors: bool | None = None,
    last_dag_run_state: schemas.DagRunState | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> Response:
    filters: dict[str, Any] = {
        "tags": tags,
        "tags_match_mode": tags_match_mode,
        "owners": owners,
        "dag_id_pattern": dag_id_pattern,
        "dag_id_prefix_pattern": dag_id_prefix_pattern,
        "dag_display_name_pattern": dag_display_name_pattern,
        "dag_display_name_prefix_pattern": dag_display_name_prefix_pattern,
        "exclude_stale": exclude_stale,
        "paused": paused,
        "has_import_errors": has_import_errors,
        "last_dag_run_state": last_dag_run_state,
    }
    factory = request.app.state.factory

    def build() -> bytes:
        query = order(dag_query(**filters), order_by, DAG_ORDER, ["dag_id"], DagModel.dag_id)
        with factory() as session:
            rows, total = paginate_rows(session, query, paging)
        dags = [present.dag(row) for row in rows]
        return collection_body(schemas.DAGCollectionResponse, dags=dags, total_entries=total)

    if last_dag_run_state is not None:  # reads the runs, which the cache does not watch
        body = await run_in_threadpool(build)
    else:
        key = (paging, tuple(order_by or ()), *(_hashable(v) for v in filters.values()))
        body = await request.app.state.dag_list.get(key, build)
    return Response(body, media_type="application/json")


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def dag_query(
    *,
    tags: list[str] | None = None,
    tags_match_mode: schemas.TagsMatchMode = schemas.TagsMatchMode.ANY,
    owners: list[str] | None = None,
    dag_id_pattern: str | None = None,
    dag_id_prefix_pattern: str | None = None,
    dag_display_name_pattern: str | None = None,
    dag_display_name_prefix_pattern: str | None = None,
    exclude_stale: bool = True,
    paused: bool | None = None,
    has_import_errors: bool | None = None,
    last_dag_run_state: schemas.DagRunState | None = None,
) -> Select[Any]:
    """The DAGs matching the filters, as `present.DAG_COLUMNS` rows (the API's list and
    the UI's DAG list both query through here)."""
    shown = func.coalesce(DagModel.dag_display_name, DagModel.dag_id)
    query: Select[Any] = select(*present.DAG_COLUMNS).where(
        matches(DagModel.dag_id, dag_id_pattern),
        starts_with(DagModel.dag_id, dag_id_prefix_pattern),
        matches(shown, dag_display_name_pattern),  # type: ignore[arg-type]
        starts_with(shown, dag_display_name_prefix_pattern),  # type: ignore[arg-type]
    )
    if exclude_stale:
        query = query.where(DagModel.is_stale.is_(False))
    if paused is not None:
        query = query.where(DagModel.is_paused.is_(paused))
    if has_import_errors is not None:
        query = query.where(DagModel.has_import_errors.is_(has_import_errors))
    if owners:
        query = query.where(
            func.coalesce(DagModel.owners, "").in_(owners) | _any_owner_matches(owners)
        )
    if tags:
        tagged = select(DagTag.dag_id).where(DagTag.name.in_(tags)).group_by(DagTag.dag_id)
        if tags_match_mode is schemas.TagsMatchMode.ALL:
            tagged = tagged.having(func.count(func.distinct(DagTag.name)) == len(set(tags)))
        query = query.where(DagModel.dag_id.in_(tagged))
    if last_dag_run_state is not None:
        query = query.where(DagModel.dag_id.in_(_last_run_in_state(last_dag_run_state)))
    return query


def _any_owner_matches(owners: list[str]) -> Any:
    from sqlalchemy import or_

    return or_(*(DagModel.owners.like(f"%{owner}%") for owner in owners))


def _last_run_in_state(state: schemas.DagRunState) -> Any:
    latest = (
        select(DagRun.dag_id, func.max(DagRun.run_after).label("run_after"))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    return (
        select(DagRun.dag_id)
        .join(latest, (latest.c.dag_id == DagRun.dag_id) & (latest.c.run_after == DagRun.run_after))
        .where(DagRun.state == str(state))
    )


@router.get("/dags/{dag_id}", response_model=schemas.DAGResponse, responses=schemas.errors(404))
def get_dag(dag_id: str, session: DbSession, _: Viewer) -> schemas.DAGResponse:
    return present.dag(dag_row(session, dag_id)._asdict())  # type: ignore[return-value]


@router.get(
    "/dags/{dag_id}/details",
    response_model=schemas.DAGDetailsResponse,
    responses=schemas.errors(404),
)
def get_dag_details(dag_id: str, session: DbSession, _: Viewer) -> schemas.DAGDetailsResponse:
    row = dag_row(session, dag_id)
    active = session.scalar(
        select(func.count())
        .select_from(DagRun)
        .where(DagRun.dag_id == dag_id, DagRun.state.in_(["queued", "running"]))
    )
    return present.dag_details(row, latest_version(session, dag_id), int(active or 0))


@router.patch("/dags/{dag_id}", response_model=schemas.DAGResponse, responses=schemas.errors(404))
def patch_dag(
    dag_id: str,
    body: schemas.DAGPatchBody,
    session: DbSession,
    _: UserRole,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> schemas.DAGResponse:
    if update_mask is not None and any(field != "is_paused" for field in update_mask):
        raise bad_request("Only `is_paused` field can be updated through the REST API")
    check_dag_exists(session, dag_id)
    set_paused(session, [dag_id], body.is_paused)
    session.commit()
    return present.dag(dag_row(session, dag_id)._asdict())  # type: ignore[return-value]


# --- tasks ------------------------------------------------------------------------------

TASK_ORDER = (
    "task_id",
    "task_display_name",
    "owner",
    "start_date",
    "end_date",
    "trigger_rule",
    "retries",
    "queue",
    "pool",
    "pool_slots",
    "priority_weight",
    "weight_rule",
    "operator_name",
)


def _tasks(session: Session, dag_id: str) -> list[dict[str, Any]]:
    check_dag_exists(session, dag_id)
    version = latest_version(session, dag_id)
    if version is None:
        raise not_found(f"The Dag with ID: `{dag_id}` has no parsed version")
    return list(version.serialized.get("tasks", []))


@router.get(
    "/dags/{dag_id}/tasks",
    response_model=schemas.TaskCollectionResponse,
    tags=["Task"],
    responses=schemas.errors(404),
)
def get_tasks(
    dag_id: str, session: DbSession, _: Viewer, order_by: str = "task_id"
) -> schemas.TaskCollectionResponse:
    descending = order_by.startswith("-")
    key = order_by.removeprefix("-")
    if key not in TASK_ORDER:
        raise bad_request(f"Ordering with '{key}' is disallowed or the attribute does not exist")
    tasks = _tasks(session, dag_id)

    def sort_key(spec: dict[str, Any]) -> tuple[bool, Any]:
        value = spec.get(key)
        return (value is None, "" if value is None else value)

    tasks.sort(key=sort_key, reverse=descending)
    return schemas.TaskCollectionResponse(
        tasks=[present.task(spec) for spec in tasks], total_entries=len(tasks)
    )


@router.get(
    "/dags/{dag_id}/tasks/{task_id}",
    response_model=schemas.TaskResponse,
    tags=["Task"],
    responses=schemas.errors(404),
)
def get_task(dag_id: str, task_id: str, session: DbSession, _: Viewer) -> schemas.TaskResponse:
    for spec in _tasks(session, dag_id):
        if spec["task_id"] == task_id:
            return present.task(spec)
    raise not_found(f"Task with id {task_id} not found")
