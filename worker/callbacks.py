"""Running one callback request: load the run's DAG version and call the callbacks."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tradewind import callbacks
from tradewind.db import session_scope
from tradewind.errors import TradewindError
from tradewind.models import DagRun, DagVersion
from tradewind.models.base import utcnow
from tradewind.sdk.context import base_context
from worker.dag_cache import DagFileCache, VersionRef
from worker.runtime import DagRunView

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.models import CallbackRequest
    from tradewind.settings import Settings

logger = logging.getLogger(__name__)


class LostTry:
    """What a callback of a lost try sees as ``ti`` (its process is gone)."""

    def __init__(self, request: CallbackRequest, state: str) -> None:
        self.dag_id, self.run_id = request.dag_id, request.run_id
        self.task_id, self.map_index = request.task_id, request.map_index
        self.try_number, self.state = request.try_number, state

    def __repr__(self) -> str:
        return f"<LostTry {self.dag_id}.{self.task_id} try {self.try_number}>"


def run_callback_request(
    factory: sessionmaker[Session], settings: Settings, dags: DagFileCache, request_id: int
) -> bool:
    """Claim and run one request; False if someone else had claimed it."""
    with session_scope(factory) as session:
        request = callbacks.claim(session, request_id, now=utcnow())
        if request is None:
            return False
        session.expunge(request)
        loaded = _load(session, request)
    error = None
    try:
        _call(request, settings, dags, factory, *loaded)
    except Exception:
        error = traceback.format_exc()
        logger.exception("Callback %s of %s failed", request.kind, request.dag_id)
    with session_scope(factory) as session:
        callbacks.finish(session, request_id, now=utcnow(), error=error)
    return True


def _load(session: Session, request: CallbackRequest) -> tuple[DagRunView, VersionRef]:
    run = session.scalar(
        select(DagRun).where(DagRun.dag_id == request.dag_id, DagRun.run_id == request.run_id)
    )
    if run is None or run.dag_version_id is None:
        raise TradewindError(f"run {request.run_id} of {request.dag_id} no longer exists")
    version = session.execute(
        select(DagVersion.fileloc, DagVersion.content_hash).where(
            DagVersion.id == run.dag_version_id
        )
    ).one()
    return DagRunView.of(run), VersionRef(run.dag_version_id, *version)


def _call(
    request: CallbackRequest,
    settings: Settings,
    dags: DagFileCache,
    factory: sessionmaker[Session],
    run: DagRunView,
    version: VersionRef,
) -> None:
    def source() -> str | None:
        with session_scope(factory) as session:
            return session.scalar(
                select(DagVersion.source_code).where(DagVersion.id == version.version_id)
            )

    dag = dags.get_version(version, request.dag_id, source)
    if request.kind in (callbacks.DAG_SUCCESS, callbacks.DAG_FAILURE):
        chosen = (
            dag.on_success_callback
            if request.kind == callbacks.DAG_SUCCESS
            else dag.on_failure_callback
        )
        context = {"dag": dag, "dag_run": run, "run_id": run.run_id, "reason": request.message}
        _invoke(chosen, context)
        return
    task = dag.get_task(request.task_id or "")
    state = "failed" if request.kind == callbacks.TASK_FAILURE else "up_for_retry"
    ti = LostTry(request, state)
    context = base_context(
        dag=dag,
        task=task,
        ti=ti,
        dag_run=run,
        params=dict(run.conf),
        logical_date=run.logical_date,
        data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end,
    )
    context["exception"] = TradewindError(request.message)
    if request.kind == callbacks.TASK_FAILURE:
        _invoke(task.on_failure_callback, context)
        if task.email_on_failure and task.email:
            from worker.execution import email_failure

            email_failure(task, context, settings)
    else:
        _invoke(task.on_retry_callback, context)


def _invoke(chosen: list[Any], context: dict[str, Any]) -> None:
    for callback in chosen:  # an error fails the request (recorded on it)
        callback(context)
