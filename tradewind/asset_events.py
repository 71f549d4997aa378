"""Assets in the metadata database: the references a DAG file declares, the events a
successful try (or an outside system) records, and queueing consumers for the scheduler.
Data functions; the caller commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tradewind.models import (
    AssetDagRunQueue,
    AssetEvent,
    AssetModel,
    DagScheduleAssetReference,
    TaskOutletAssetReference,
)
from tradewind.wakeup import wake_scheduler


def ensure_asset(
    session: Session, uri: str, *, name: str | None = None, group: str = "asset"
) -> AssetModel:
    """The asset with this URI, created if new (safe when two processes race)."""
    found = session.scalar(select(AssetModel).where(AssetModel.uri == uri))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            asset = AssetModel(uri=uri, name=name or uri, group=group, extra={})
            session.add(asset)
        return asset
    except IntegrityError:
        return session.scalars(select(AssetModel).where(AssetModel.uri == uri)).one()


def sync_references(session: Session, dag_id: str, serialized: Mapping[str, Any]) -> None:
    """Record which assets a DAG version consumes (its schedule) and produces (its
    tasks' outlets), replacing what an earlier version declared."""
    schedule = serialized.get("schedule") or {}
    consumed = list(_assets_in(schedule["condition"])) if schedule.get("type") == "assets" else []
    produced = [
        (task["task_id"], asset)
        for task in serialized["tasks"]
        for asset in task.get("outlets", [])
    ]
    session.execute(
        delete(DagScheduleAssetReference).where(DagScheduleAssetReference.dag_id == dag_id)
    )
    session.execute(
        delete(TaskOutletAssetReference).where(TaskOutletAssetReference.dag_id == dag_id)
    )
    for asset_id in {_asset_id(session, asset) for asset in consumed}:
        session.add(DagScheduleAssetReference(asset_id=asset_id, dag_id=dag_id))
    for asset_id, task_id in {(_asset_id(session, a), t) for t, a in produced}:
        session.add(TaskOutletAssetReference(asset_id=asset_id, dag_id=dag_id, task_id=task_id))
    session.flush()


def _asset_id(session: Session, asset: Mapping[str, Any]) -> int:
    return ensure_asset(
        session, asset["uri"], name=asset.get("name"), group=asset.get("group", "asset")
    ).id


def _assets_in(condition: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    if "asset" in condition:
        yield condition["asset"]
    for part in condition.get("all", []) + condition.get("any", []):
        yield from _assets_in(part)


def record_event(
    session: Session,
    asset: AssetModel,
    *,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
    source: tuple[str, str, str, int] | None = None,
) -> AssetEvent:
    """Record an update of ``asset`` (by the task instance ``source``, or from outside)
    and queue the DAGs scheduled on it."""
    dag_id, task_id, run_id, map_index = source or (None, None, None, None)
    event = AssetEvent(
        asset_id=asset.id,
        extra=dict(extra or {}),
        source_dag_id=dag_id,
        source_task_id=task_id,
        source_run_id=run_id,
        source_map_index=map_index,
        timestamp=now,
    )
    session.add(event)
    consumers = session.scalars(
        select(DagScheduleAssetReference.dag_id).where(
            DagScheduleAssetReference.asset_id == asset.id
        )
    ).all()
    for dag_id in consumers:
        queued = session.get(AssetDagRunQueue, (asset.id, dag_id))
        if queued is None:
            try:
                with session.begin_nested():
                    session.add(
                        AssetDagRunQueue(asset_id=asset.id, target_dag_id=dag_id, created_at=now)
                    )
            except IntegrityError:
                pass  # queued by someone else meanwhile: the same thing
    session.flush()
    if consumers:
        wake_scheduler(session)
    return event


__all__ = ["ensure_asset", "record_event", "sync_references"]
