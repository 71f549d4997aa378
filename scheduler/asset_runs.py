"""Runs of DAGs scheduled on assets: once the assets updated since a DAG's last such run
satisfy its condition, create an ``asset_triggered`` run that knows the events behind it.
Data functions inside the scheduler tick's transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scheduler.run_creation import active_runs, isolated, lock_rows
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.errors import ParamValidationError
from tradewind.models import (
    AssetDagRunQueue,
    AssetEvent,
    AssetModel,
    DagModel,
    DagRun,
    DagRunAssetEvent,
    DagScheduleAssetReference,
)
from tradewind.schedules.assets import AssetSchedule
from tradewind.serialization import SerializedDag
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
    version = latest_version(session, model.dag_id)
    dag = SerializedDag.from_dict(version.serialized)
    schedule = dag.schedule
    if model.is_stale or not isinstance(schedule, AssetSchedule):
        # No longer scheduled on assets: what was waiting for it will never be used.
        _unqueue(session, model.dag_id, list(queued.values()))
        return None
    if model.is_paused or not schedule.condition.evaluate(set(queued)):
        return None
    if active_runs(session, model.dag_id) >= dag.max_active_runs:
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
