"""Runs of DAGs scheduled on assets: once the assets updated since a DAG's last such run
satisfy its condition, create an ``asset_triggered`` run that knows the events behind it.
Data functions inside the scheduler tick's transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scheduler.run_creation import active_runs, isolated, lock_rows
from tradewind.dagruns import RunRequest, create_dag_run
from tradewind.dagversions import serialized_for
from tradewind.errors import ParamValidationError
from tradewind.models import (
    AssetDagRunQueue,
    AssetEvent,
    AssetModel,
    DagModel,
    DagRun,
    DagRunAssetEvent,
    DagScheduleAssetReference,
    DagVersion,
)
from tradewind.schedules.assets import AssetSchedule
from tradewind.state import DagRunType

logger = logging.getLogger(__name__)
ASSET_TRIGGER = "asset"


def create_asset_triggered_runs(session: Session, now: datetime) -> list[DagRun]:
    """One run for each consumer DAG whose asset condition is now met."""
    waiting = session.scalars(select(AssetDagRunQueue.target_dag_id).distinct()).all()
    if not waiting:
        return []
    query = select(DagModel).where(DagModel.dag_id.in_(sorted(waiting)))
    created = []
    for model in session.scalars(lock_rows(session, query)).all():
        with isolated(session, f"creating an asset-triggered run of {model.dag_id}"):
            run = _maybe_create(session, model, now)
            if run is not None:
                created.append(run)
    return created


def _maybe_create(session: Session, model: DagModel, now: datetime) -> DagRun | None:
    queued = dict(
        session.execute(
            select(AssetModel.uri, AssetModel.id)
            .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetDagRunQueue.target_dag_id == model.dag_id)
        ).all()
    )
    if model.is_paused and not model.is_stale:
        return None  # its updates wait until it is unpaused
    # This runs every pass while a condition is only partly met: read the (cached)
    # serialized DAG by version id rather than loading the version row each time.
    version_id = session.scalar(
        select(DagVersion.id)
        .where(DagVersion.dag_id == model.dag_id)
        .order_by(DagVersion.version_number.desc())
        .limit(1)
    )
    dag = serialized_for(session, version_id) if version_id is not None else None
    schedule = dag.schedule if dag is not None else None
    if dag is None or model.is_stale or not isinstance(schedule, AssetSchedule):
        # No longer scheduled on assets: what was waiting for it will never be used.
        _unqueue(session, model.dag_id, list(queued.values()))
        return None
    if not schedule.condition.evaluate(set(queued)):
        return None
    if active_runs(session, model.dag_id) >= dag.max_active_runs:
        return None
    version = session.get(DagVersion, version_id)
    if version is None:  # pragma: no cover - read a moment ago
        return None
    try:
        with session.begin_nested():
            run = create_dag_run(
                session,
                model,
                version,
                RunRequest(
                    run_type=DagRunType.ASSET_TRIGGERED,
                    run_after=now,
                    triggered_by=ASSET_TRIGGER,
                ),
                now=now,
            )
    except ParamValidationError as exc:
        logger.error("Asset-triggered run of %s not created: bad params: %s", model.dag_id, exc)
        _unqueue(session, model.dag_id, list(queued.values()))
        return None
    for event_id in _events_since_last_run(session, model.dag_id, run.id, now):
        session.add(DagRunAssetEvent(dag_run_id=run.id, event_id=event_id))
    _unqueue(session, model.dag_id, list(queued.values()))
    logger.info(
        "Created asset-triggered run %s of %s (updated: %s)",
        run.run_id,
        model.dag_id,
        ", ".join(sorted(queued)),
    )
    return run


def _events_since_last_run(session: Session, dag_id: str, run_pk: int, now: datetime) -> list[int]:
    """The events of the DAG's assets after its previous asset-triggered run."""
    previous = session.scalar(
        select(DagRun.run_after)
        .where(
            DagRun.dag_id == dag_id,
            DagRun.run_type == str(DagRunType.ASSET_TRIGGERED),
            DagRun.id != run_pk,
        )
        .order_by(DagRun.run_after.desc())
        .limit(1)
    )
    query = (
        select(AssetEvent.id)
        .join(
            DagScheduleAssetReference,
            DagScheduleAssetReference.asset_id == AssetEvent.asset_id,
        )
        .where(DagScheduleAssetReference.dag_id == dag_id, AssetEvent.timestamp <= now)
        .order_by(AssetEvent.id)
    )
    if previous is not None:
        query = query.where(AssetEvent.timestamp > previous)
    return list(session.scalars(query))


def _unqueue(session: Session, dag_id: str, asset_ids: list[int]) -> None:
    if asset_ids:
        session.execute(
            delete(AssetDagRunQueue).where(
                AssetDagRunQueue.target_dag_id == dag_id,
                AssetDagRunQueue.asset_id.in_(asset_ids),
            )
        )
