"""Assets and asset events: list and read them, the events behind an asset-triggered
run, and recording an event from outside (an external system saying "the file landed"),
which queues the DAGs scheduled on the asset like a producing task's success does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tradewind.asset_events import record_event
from tradewind.models import (
    AssetEvent,
    AssetModel,
    DagRun,
    DagRunAssetEvent,
    DagScheduleAssetReference,
    TaskOutletAssetReference,
)
from tradewind.models.base import utcnow
from webserver.api import schemas
from webserver.api.common import (
    DbSession,
    Paging,
    matches,
    not_found,
    order,
    paginate,
    refuse_nul_in_url,
)
from webserver.api.dag_runs import find_run
from webserver.security import UserRole, Viewer

router = APIRouter(
    dependencies=[Depends(refuse_nul_in_url)],
    responses=schemas.errors(400, 401, 403),
    tags=["Asset"],
)
AssetId = Annotated[int, Path(ge=1, le=schemas.DB_INT_MAX)]
ASSET_ORDER = {
    "id": AssetModel.id,
    "name": AssetModel.name,
    "uri": AssetModel.uri,
    "created_at": AssetModel.created_at,
    "updated_at": AssetModel.updated_at,
}
EVENT_ORDER = {
    "id": AssetEvent.id,
    "timestamp": AssetEvent.timestamp,
    "source_dag_id": AssetEvent.source_dag_id,
    "source_task_id": AssetEvent.source_task_id,
    "source_run_id": AssetEvent.source_run_id,
    "source_map_index": AssetEvent.source_map_index,
}


def present_assets(session: Session, rows: list[AssetModel]) -> list[schemas.AssetResponse]:
    ids = [row.id for row in rows]
    consumers: dict[int, list[schemas.DagScheduleAssetReferenceResponse]] = {i: [] for i in ids}
    for ref in session.scalars(
        select(DagScheduleAssetReference)
        .where(DagScheduleAssetReference.asset_id.in_(ids))
        .order_by(DagScheduleAssetReference.dag_id)
    ):
        consumers[ref.asset_id].append(
            schemas.DagScheduleAssetReferenceResponse(
                dag_id=ref.dag_id, created_at=ref.created_at, updated_at=ref.created_at
            )
        )
    producers: dict[int, list[schemas.TaskOutletAssetReferenceResponse]] = {i: [] for i in ids}
    for out in session.scalars(
        select(TaskOutletAssetReference)
        .where(TaskOutletAssetReference.asset_id.in_(ids))
        .order_by(TaskOutletAssetReference.dag_id, TaskOutletAssetReference.task_id)
    ):
        producers[out.asset_id].append(
            schemas.TaskOutletAssetReferenceResponse(
                dag_id=out.dag_id,
                task_id=out.task_id,
                created_at=out.created_at,
                updated_at=out.created_at,
            )
        )
    last = {
        asset_id: (event_id, timestamp)
        for asset_id, event_id, timestamp in session.execute(
            select(AssetEvent.asset_id, func.max(AssetEvent.id), func.max(AssetEvent.timestamp))
            .where(AssetEvent.asset_id.in_(ids))
            .group_by(AssetEvent.asset_id)
        )
    }
    return [
        schemas.AssetResponse(
            id=row.id,
            name=row.name,
            uri=row.uri,
            group=row.group,
            extra=row.extra or {},
            created_at=row.created_at,
            updated_at=row.updated_at,
            scheduled_dags=consumers[row.id],
            producing_tasks=producers[row.id],
            consuming_tasks=[],
            aliases=[],
            last_asset_event=(
                schemas.LastAssetEventResponse(id=last[row.id][0], timestamp=last[row.id][1])
                if row.id in last
                else None
            ),
        )
        for row in rows
    ]


def present_events(session: Session, rows: list[AssetEvent]) -> list[schemas.AssetEventResponse]:
    ids = [row.id for row in rows]
    assets = {
        a.id: a
        for a in session.scalars(
            select(AssetModel).where(AssetModel.id.in_({row.asset_id for row in rows}))
        )
    }
    runs: dict[int, list[schemas.DagRunAssetReference]] = {i: [] for i in ids}
    for event_id, run in session.execute(
        select(DagRunAssetEvent.event_id, DagRun)
        .join(DagRun, DagRun.id == DagRunAssetEvent.dag_run_id)
        .where(DagRunAssetEvent.event_id.in_(ids))
        .order_by(DagRun.id)
    ):
        runs[event_id].append(
            schemas.DagRunAssetReference(
                run_id=run.run_id,
                dag_id=run.dag_id,
                logical_date=run.logical_date,
                start_date=run.start_date,
                end_date=run.end_date,
                state=run.state,
                data_interval_start=run.data_interval_start,
                data_interval_end=run.data_interval_end,
            )
        )
    out = []
    for row in rows:
        asset = assets.get(row.asset_id)
        out.append(
            schemas.AssetEventResponse(
                id=row.id,
                asset_id=row.asset_id,
                uri=asset.uri if asset else None,
                name=asset.name if asset else None,
                group=asset.group if asset else None,
                extra=row.extra or {},
                source_task_id=row.source_task_id,
                source_dag_id=row.source_dag_id,
                source_run_id=row.source_run_id,
                source_map_index=-1 if row.source_map_index is None else row.source_map_index,
                created_dagruns=runs[row.id],
                timestamp=row.timestamp,
            )
        )
    return out


@router.get("/assets", response_model=schemas.AssetCollectionResponse)
def get_assets(
    session: DbSession,
    _: Viewer,
    paging: Paging,
    name_pattern: str | None = None,
    uri_pattern: str | None = None,
    dag_ids: Annotated[list[str] | None, Query()] = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> schemas.AssetCollectionResponse:
    """Assets with the DAGs scheduled on them and the tasks producing them; ``dag_ids``
    keeps those a DAG consumes or produces."""
    query = select(AssetModel).where(
        matches(AssetModel.name, name_pattern), matches(AssetModel.uri, uri_pattern)
    )
    if dag_ids:
        consumed = select(DagScheduleAssetReference.asset_id).where(
            DagScheduleAssetReference.dag_id.in_(dag_ids)
        )
        produced = select(TaskOutletAssetReference.asset_id).where(
            TaskOutletAssetReference.dag_id.in_(dag_ids)
        )
        query = query.where(AssetModel.id.in_(consumed) | AssetModel.id.in_(produced))
    query = order(query, order_by, ASSET_ORDER, ["id"], AssetModel.id)
    rows, total = paginate(session, query, paging)
    return schemas.AssetCollectionResponse(
        assets=present_assets(session, rows), total_entries=total
    )


@router.get(
    "/assets/events",
    response_model=schemas.AssetEventCollectionResponse,
)
def get_asset_events(
    session: DbSession,
    _: Viewer,
    paging: Paging,
    asset_id: Annotated[int | None, Query(ge=1, le=schemas.DB_INT_MAX)] = None,
    source_dag_id: str | None = None,
    source_task_id: str | None = None,
    source_run_id: str | None = None,
    source_map_index: Annotated[int | None, Query(ge=-1, le=schemas.DB_INT_MAX)] = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> schemas.AssetEventCollectionResponse:
    query = select(AssetEvent)
    for column, value in (
        (AssetEvent.asset_id, asset_id),
        (AssetEvent.source_dag_id, source_dag_id),
        (AssetEvent.source_task_id, source_task_id),
        (AssetEvent.source_run_id, source_run_id),
        (AssetEvent.source_map_index, source_map_index),
    ):
        if value is not None:
            query = query.where(column == value)
    query = order(query, order_by, EVENT_ORDER, ["id"], AssetEvent.id)
    rows, total = paginate(session, query, paging)
    return schemas.AssetEventCollectionResponse(
        asset_events=present_events(session, rows), total_entries=total
    )


@router.post(
    "/assets/events",
    response_model=schemas.AssetEventResponse,
    responses=schemas.errors(404),
)
def create_asset_event(
    body: schemas.CreateAssetEventsBody, session: DbSession, _: UserRole
) -> schemas.AssetEventResponse:
    """Record an update of an asset from outside; DAGs scheduled on it are queued."""
    asset = session.get(AssetModel, body.asset_id)
    if asset is None:
        raise not_found(f"The Asset with id: `{body.asset_id}` was not found")
    event = record_event(session, asset, now=utcnow(), extra=body.extra)
    session.commit()
    return present_events(session, [event])[0]


@router.get(
    "/assets/{asset_id}",
    response_model=schemas.AssetResponse,
    responses=schemas.errors(404),
)
def get_asset(asset_id: AssetId, session: DbSession, _: Viewer) -> schemas.AssetResponse:
    asset = session.get(AssetModel, asset_id)
    if asset is None:
        raise not_found(f"The Asset with id: `{asset_id}` was not found")
    return present_assets(session, [asset])[0]


@router.get(
    "/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamAssetEvents",
    response_model=schemas.AssetEventCollectionResponse,
    responses=schemas.errors(404),
)
def get_upstream_asset_events(
    dag_id: str, dag_run_id: str, session: DbSession, _: Viewer
) -> schemas.AssetEventCollectionResponse:
    """The asset events that triggered a run."""
    run = find_run(session, dag_id, dag_run_id)
    rows = list(
        session.scalars(
            select(AssetEvent)
            .join(DagRunAssetEvent, DagRunAssetEvent.event_id == AssetEvent.id)
            .where(DagRunAssetEvent.dag_run_id == run.id)
            .order_by(AssetEvent.id)
        )
    )
    return schemas.AssetEventCollectionResponse(
        asset_events=present_events(session, rows), total_entries=len(rows)
    )
