"""The assets pages: every asset with its producers, consumers and last update, the
lineage graph, and one asset's page with its recent events and the runs they started."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from tradewind.models import (
    AssetEvent,
    AssetModel,
    DagRun,
    DagRunAssetEvent,
    DagScheduleAssetReference,
    TaskOutletAssetReference,
)
from webserver.api import schemas
from webserver.api.common import DbSession
from webserver.ui.lineage import ASSET_PREFIX, DAG_PREFIX, lineage_layout
from webserver.ui.render import page
from webserver.ui.session import UiViewer

router = APIRouter(include_in_schema=False)
RECENT_EVENTS = 25


@router.get("/assets", response_class=HTMLResponse)
def assets_view(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    assets = list(session.scalars(select(AssetModel).order_by(AssetModel.uri)))
    consumers = session.execute(
        select(DagScheduleAssetReference.asset_id, DagScheduleAssetReference.dag_id).order_by(
            DagScheduleAssetReference.dag_id
        )
    ).all()
    producers = session.execute(
        select(
            TaskOutletAssetReference.asset_id,
            TaskOutletAssetReference.dag_id,
            TaskOutletAssetReference.task_id,
        ).order_by(TaskOutletAssetReference.dag_id, TaskOutletAssetReference.task_id)
    ).all()
    last = {
        asset_id: (count, latest)
        for asset_id, count, latest in session.execute(
            select(AssetEvent.asset_id, func.count(), func.max(AssetEvent.timestamp)).group_by(
                AssetEvent.asset_id
            )
        )
    }
    labels = {f"{ASSET_PREFIX}{a.id}": a.name for a in assets}
    kinds = dict.fromkeys(labels, "Asset")
    edges = []
    for asset_id, dag_id in consumers:
        labels[f"{DAG_PREFIX}{dag_id}"], kinds[f"{DAG_PREFIX}{dag_id}"] = dag_id, "DAG"
        edges.append((f"{ASSET_PREFIX}{asset_id}", f"{DAG_PREFIX}{dag_id}"))
    for asset_id, dag_id, _task_id in producers:
        labels[f"{DAG_PREFIX}{dag_id}"], kinds[f"{DAG_PREFIX}{dag_id}"] = dag_id, "DAG"
        edges.append((f"{DAG_PREFIX}{dag_id}", f"{ASSET_PREFIX}{asset_id}"))
    return page(
        request,
        "assets.html",
        principal,
        assets=[
            {
                "asset": a,
                "consumers": [d for i, d in consumers if i == a.id],
                "producers": [(d, t) for i, d, t in producers if i == a.id],
                "events": last.get(a.id, (0, None))[0],
                "last_update": last.get(a.id, (0, None))[1],
            }
            for a in assets
        ],
        layout=lineage_layout(sorted(set(edges)), labels, kinds),
        nav="assets",
    )


@router.get("/assets/{asset_id}", response_class=HTMLResponse)
def asset_view(
    request: Request,
    asset_id: Annotated[int, Path(ge=1, le=schemas.DB_INT_MAX)],
    session: DbSession,
    principal: UiViewer,
) -> HTMLResponse:
    asset = session.get(AssetModel, asset_id)
    if asset is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No asset with id {asset_id}")
    consumers = list(
        session.scalars(
            select(DagScheduleAssetReference.dag_id)
            .where(DagScheduleAssetReference.asset_id == asset_id)
            .order_by(DagScheduleAssetReference.dag_id)
        )
    )
    producers = session.execute(
        select(TaskOutletAssetReference.dag_id, TaskOutletAssetReference.task_id)
        .where(TaskOutletAssetReference.asset_id == asset_id)
        .order_by(TaskOutletAssetReference.dag_id, TaskOutletAssetReference.task_id)
    ).all()
    events = list(
        session.scalars(
            select(AssetEvent)
            .where(AssetEvent.asset_id == asset_id)
            .order_by(AssetEvent.id.desc())
            .limit(RECENT_EVENTS)
        )
    )
    started: dict[int, list[DagRun]] = {e.id: [] for e in events}
    for event_id, run in session.execute(
        select(DagRunAssetEvent.event_id, DagRun)
        .join(DagRun, DagRun.id == DagRunAssetEvent.dag_run_id)
        .where(DagRunAssetEvent.event_id.in_(list(started)))
    ):
        started[event_id].append(run)
    node = f"{ASSET_PREFIX}{asset.id}"
    labels, kinds = {node: asset.name}, {node: "Asset"}
    edges = []
    for dag_id in consumers:
        labels[f"{DAG_PREFIX}{dag_id}"], kinds[f"{DAG_PREFIX}{dag_id}"] = dag_id, "DAG"
        edges.append((node, f"{DAG_PREFIX}{dag_id}"))
    for dag_id, _task_id in producers:
        labels[f"{DAG_PREFIX}{dag_id}"], kinds[f"{DAG_PREFIX}{dag_id}"] = dag_id, "DAG"
        edges.append((f"{DAG_PREFIX}{dag_id}", node))
    return page(
        request,
        "asset.html",
        principal,
        asset=asset,
        consumers=consumers,
        producers=producers,
        events=[(e, started[e.id]) for e in events],
        layout=lineage_layout(sorted(set(edges)), labels, kinds),
        nav="assets",
    )
