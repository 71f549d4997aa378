"""Backfills: create (or dry-run) one, list and read them, pause, unpause, cancel.

Creating one records its plan; the scheduler creates and runs its runs (see
`tradewind.backfills`). Reading needs the viewer role; changing, the user role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind import backfills
from tradewind.backfills import BackfillRequest, Progress
from tradewind.errors import (
    BackfillAlreadyRunning,
    BackfillError,
    BackfillNotFound,
    DagNotFound,
    ParamValidationError,
)
from tradewind.models import Backfill, DagModel
from tradewind.models.base import utcnow
from webserver.api import schemas
from webserver.api.common import (
    DbSession,
    Paging,
    bad_request,
    conflict,
    not_found,
    paginate,
    refuse_nul_in_url,
)
from webserver.security import UserRole, Viewer

router = APIRouter(
    dependencies=[Depends(refuse_nul_in_url)],
    responses=schemas.errors(400, 401, 403),
    tags=["Backfill"],
)
BackfillId = Annotated[int, Path(ge=1, le=schemas.DB_INT_MAX)]


def present(session: Session, rows: list[Backfill]) -> list[schemas.BackfillResponse]:
    progress = backfills.progress(session, [row.id for row in rows])
    names = dict(
        session.execute(
            select(DagModel.dag_id, DagModel.dag_display_name).where(
                DagModel.dag_id.in_({row.dag_id for row in rows})
            )
        ).all()
    )
    return [
        schemas.BackfillResponse(
            id=row.id,
            dag_id=row.dag_id,
            from_date=row.from_date,
            to_date=row.to_date,
            dag_run_conf=row.dag_run_conf or {},
            is_paused=row.is_paused,
            reprocess_behavior=row.reprocess_behavior,  # type: ignore[arg-type]
            max_active_runs=row.max_active_runs,
            created_at=row.created_at,
            completed_at=row.completed_at,
            updated_at=row.updated_at,
            dag_display_name=names.get(row.dag_id) or row.dag_id,
            run_backwards=row.run_backwards,
            progress=_progress(progress[row.id]),
        )
        for row in rows
    ]


def _progress(progress: Progress) -> schemas.BackfillProgress:
    return schemas.BackfillProgress(
        total=progress.total,
        succeeded=progress.succeeded,
        failed=progress.failed,
        running=progress.running,
        queued=progress.queued,
        pending=progress.pending,
        skipped=progress.skipped,
    )


def _request(body: schemas.BackfillPostBody, user: str | None) -> BackfillRequest:
    return BackfillRequest(
        dag_id=body.dag_id,
        from_date=body.from_date,
        to_date=body.to_date,
        max_active_runs=body.max_active_runs,
        reprocess_behavior=body.reprocess_behavior,
        run_backwards=body.run_backwards,
        conf=body.dag_run_conf,
        triggering_user_name=user,
    )


def _errors_of(call: Any) -> Any:
    """Map the domain's errors onto the API's answers."""
    try:
        return call()
    except (DagNotFound, BackfillNotFound) as exc:
        raise not_found(str(exc)) from None
    except BackfillAlreadyRunning as exc:
        raise conflict(str(exc)) from None
    except (BackfillError, ParamValidationError) as exc:
        raise bad_request(str(exc)) from None


@router.get("/backfills", response_model=schemas.BackfillCollectionResponse)
def list_backfills(
    session: DbSession,
    _: Viewer,
    paging: Paging,
    dag_id: Annotated[str | None, Query(max_length=250)] = None,
    active: bool | None = None,
) -> schemas.BackfillCollectionResponse:
    """Backfills, newest first; ``dag_id`` for one DAG's, ``active`` for those that have
    (or have not) completed."""
    query = select(Backfill).order_by(Backfill.id.desc())
    if dag_id is not None:
        query = query.where(Backfill.dag_id == dag_id)
    if active is not None:
        query = query.where(
            Backfill.completed_at.is_(None) if active else Backfill.completed_at.is_not(None)
        )
    rows, total = paginate(session, query, paging)
    return schemas.BackfillCollectionResponse(backfills=present(session, rows), total_entries=total)


@router.post(
    "/backfills",
    response_model=schemas.BackfillResponse,
    responses=schemas.errors(404, 409),
)
def create_backfill(
    body: schemas.BackfillPostBody, session: DbSession, user: UserRole
) -> schemas.BackfillResponse:
    request = _request(body, user.username)
    backfill = _errors_of(lambda: backfills.create_backfill(session, request, now=utcnow()))
    session.commit()
    return present(session, [backfill])[0]


@router.post(
    "/backfills/dry_run",
    response_model=schemas.DryRunBackfillCollectionResponse,
    responses=schemas.errors(404),
)
def dry_run_backfill(
    body: schemas.BackfillPostBody, session: DbSession, user: UserRole
) -> schemas.DryRunBackfillCollectionResponse:
    request = _request(body, user.username)
    planned = _errors_of(lambda: backfills.plan(session, request, now=utcnow()))
    return schemas.DryRunBackfillCollectionResponse(
        backfills=[
            schemas.DryRunBackfillResponse(
                logical_date=run.logical_date,
                existing_state=run.existing_state,
                skip_reason=run.skip_reason,
            )
            for run in planned
        ],
        total_entries=len(planned),
    )


@router.get("/backfills/dry_run", include_in_schema=False)
def dry_run_is_post_only() -> None:
    """Without this, GET would reach `get_backfill` with "dry_run" as an id."""
    raise HTTPException(
        status.HTTP_405_METHOD_NOT_ALLOWED, "Method Not Allowed", headers={"Allow": "POST"}
    )


@router.get(
    "/backfills/{backfill_id}",
    response_model=schemas.BackfillResponse,
    responses=schemas.errors(404),
)
def get_backfill(
    backfill_id: BackfillId, session: DbSession, _: Viewer
) -> schemas.BackfillResponse:
    backfill = _errors_of(lambda: backfills.get_backfill(session, backfill_id))
    return present(session, [backfill])[0]


def _change(session: Session, backfill_id: int, action: str) -> schemas.BackfillResponse:
    try:
        backfill = backfills.change(session, backfill_id, action, now=utcnow())
    except BackfillNotFound as exc:
        raise not_found(str(exc)) from None
    except BackfillError as exc:  # it has completed
        raise conflict(str(exc)) from None
    session.commit()
    return present(session, [backfill])[0]


@router.put(
    "/backfills/{backfill_id}/pause",
    response_model=schemas.BackfillResponse,
    responses=schemas.errors(404, 409),
)
def pause_backfill(
    backfill_id: BackfillId, session: DbSession, _: UserRole
) -> schemas.BackfillResponse:
    return _change(session, backfill_id, "pause")


@router.put(
    "/backfills/{backfill_id}/unpause",
    response_model=schemas.BackfillResponse,
    responses=schemas.errors(404, 409),
)
def unpause_backfill(
    backfill_id: BackfillId, session: DbSession, _: UserRole
) -> schemas.BackfillResponse:
    return _change(session, backfill_id, "unpause")


@router.put(
    "/backfills/{backfill_id}/cancel",
    response_model=schemas.BackfillResponse,
    responses=schemas.errors(404, 409),
)
def cancel_backfill(
    backfill_id: BackfillId, session: DbSession, _: UserRole
) -> schemas.BackfillResponse:
    return _change(session, backfill_id, "cancel")
