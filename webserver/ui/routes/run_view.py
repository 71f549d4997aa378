"""A run's page and its actions: clear, mark success or failed, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind import clearing
from tradewind.dagruns import set_run_state
from tradewind.models import DagRun, TaskInstance
from tradewind.models.base import utcnow
from tradewind.state import DagRunState, TaskInstanceState
from webserver.api import present
from webserver.api.common import DbSession
from webserver.api.dag_runs import DELETABLE, RUN_ROWS, find_run
from webserver.api.dags import dag_row
from webserver.ui.render import dag_url, page, run_url
from webserver.ui.session import UiUser, UiViewer

router = APIRouter(include_in_schema=False)

LIVE = {"queued", "running"}
FAILED_STATES = {str(TaskInstanceState.FAILED), str(TaskInstanceState.UPSTREAM_FAILED)}
NOTICES = {
    "cleared": "Cleared: the tasks will run again.",
    "nothing": "Nothing to clear: the run was queued again as it was.",
    "marked": "The run was marked.",
    "triggered": "Run queued.",
}


def instances(session: Session, dag_id: str, run_id: str) -> list[TaskInstance]:
    return list(
        session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(
                TaskInstance.start_date.is_(None),
                TaskInstance.start_date,
                TaskInstance.task_id,
                TaskInstance.map_index,
            )
        )
    )


@router.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request,
    dag_id: str,
    run_id: str,
    session: DbSession,
    principal: UiViewer,
    fragment: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    dag = present.dag(dag_row(session, dag_id)._asdict())
    run = find_run(session, dag_id, run_id)
    fields = present.dag_run(session.execute(RUN_ROWS.where(DagRun.id == run.id)).one()._asdict())
    rows = instances(session, dag_id, run_id)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state or "no_status"] = counts.get(row.state or "no_status", 0) + 1
    return page(
        request,
        "_run_body.html" if fragment == "run" else "run.html",
        principal,
        dag=dag,
        run=fields,
        instances=rows,
        counts=counts,
        live=run.state in LIVE,
        deletable=run.state in DELETABLE,
        notice=NOTICES.get(notice or ""),
        nav="dags",
    )


def _back(dag_id: str, run_id: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{run_url(dag_id, run_id)}?notice={notice}", status_code=303)


@router.post("/dags/{dag_id}/runs/{run_id}/clear")
def clear_run(
    dag_id: str,
    run_id: str,
    session: DbSession,
    _: UiUser,
    only_failed: Annotated[bool, Form()] = False,
) -> Response:
    run = find_run(session, dag_id, run_id)
    rows = instances(session, dag_id, run_id)
    if only_failed:
        rows = [r for r in rows if r.state in FAILED_STATES]
    if rows:
        clearing.clear(session, rows, now=utcnow())
    else:
        run.state = str(DagRunState.QUEUED)
    session.commit()
    return _back(dag_id, run_id, "cleared" if rows else "nothing")


@router.post("/dags/{dag_id}/runs/{run_id}/mark")
def mark_run(
    dag_id: str,
    run_id: str,
    session: DbSession,
    _: UiUser,
    state: Annotated[str, Form()],
) -> Response:
    if state not in (str(DagRunState.SUCCESS), str(DagRunState.FAILED)):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "A run can be marked success or failed.")
    run = find_run(session, dag_id, run_id)
    set_run_state(session, run, DagRunState(state), now=utcnow())
    session.commit()
    return _back(dag_id, run_id, "marked")


@router.post("/dags/{dag_id}/runs/{run_id}/delete")
def delete_run(dag_id: str, run_id: str, session: DbSession, _: UiUser) -> Response:
    run = find_run(session, dag_id, run_id)
    if run.state not in DELETABLE:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"A {run.state} run cannot be deleted; mark it success or failed first.",
        )
    session.delete(run)
    session.commit()
    return RedirectResponse(dag_url(dag_id, "runs"), status_code=303)
