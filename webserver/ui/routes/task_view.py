"""A task instance's page: its tries, rendered fields, XComs and live log, and actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tradewind import clearing
from tradewind.models import (
    DagRun,
    DagVersion,
    Job,
    TaskInstance,
    TaskInstanceHistory,
    TaskReschedule,
    Trigger,
    XCom,
)
from tradewind.models.base import utcnow
from tradewind.state import TaskInstanceState
from webserver.api import present, schemas
from webserver.api.clearing import run_tasks, runs_around
from webserver.api.common import DbSession
from webserver.api.dags import dag_row
from webserver.api.task_instances import LIVE_STATES, find_instance, read_log
from webserver.ui.render import page, ti_url
from webserver.ui.session import UiUser, UiViewer

router = APIRouter(include_in_schema=False)

TI_PATH = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"
MapIndex = Annotated[schemas.MapIndex, Query()]
NOTICES = {"cleared": "Cleared: it will run again.", "marked": "Marked."}


def tries(session: Session, row: TaskInstance) -> list[Any]:
    """Every try of the instance, the earliest first (the archived ones, then this one)."""
    earlier = list(
        session.scalars(
            select(TaskInstanceHistory)
            .where(TaskInstanceHistory.task_instance_id == row.id)
            .order_by(TaskInstanceHistory.try_number)
        )
    )
    shown: list[Any] = [t for t in earlier if t.try_number != row.try_number or row.state is None]
    if row.try_number > 0 and row.state is not None:
        shown.append(row)
    return shown


def _spec(session: Session, run: DagRun, task_id: str) -> dict[str, Any]:
    version = session.get(DagVersion, run.dag_version_id) if run.dag_version_id else None
    for spec in version.serialized.get("tasks", []) if version else []:
        if spec["task_id"] == task_id:
            return dict(spec)
    return {}


def _triggered_run(row: TaskInstance, xcoms: list[XCom]) -> dict[str, str] | None:
    """The run a TriggerDagRunOperator started: its DAG from the rendered fields (stored
    when the try ends), its id from the XCom it pushed at once."""
    dag_id = (row.rendered_fields or {}).get("trigger_dag_id")
    run_ids = [x.value for x in xcoms if x.key == "trigger_run_id" and isinstance(x.value, str)]
    if not isinstance(dag_id, str) or not run_ids:
        return None
    return {"dag_id": dag_id, "run_id": run_ids[0]}


@router.get(TI_PATH, response_class=HTMLResponse)
def task_page(
    request: Request,
    dag_id: str,
    run_id: str,
    task_id: str,
    session: DbSession,
    principal: UiViewer,
    map_index: MapIndex = -1,
    try_number: Annotated[int | None, Query(alias="try", ge=1, le=schemas.DB_INT_MAX)] = None,
    fragment: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    dag = present.dag(dag_row(session, dag_id)._asdict())
    row, run = find_instance(session, dag_id, run_id, task_id, map_index)
    all_tries = tries(session, row)
    chosen = try_number or row.try_number
    lines: list[str] = []
    token = None
    if chosen >= 1 and chosen <= row.try_number:
        lines, token = read_log(session, request.app.state.settings, row, chosen, None)
    mapped = []
    if map_index == -1:
        mapped = list(
            session.scalars(
                select(TaskInstance)
                .where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id == run_id,
                    TaskInstance.task_id == task_id,
                    TaskInstance.map_index >= 0,
                )
                .order_by(TaskInstance.map_index)
            )
        )
    pokes = session.execute(
        select(func.count(), func.min(TaskReschedule.start_date)).where(
            TaskReschedule.ti_id == row.id, TaskReschedule.try_number == row.try_number
        )
    ).one()
    trigger = session.get(Trigger, row.trigger_id) if row.trigger_id else None
    triggerer = session.get(Job, trigger.triggerer_id) if trigger and trigger.triggerer_id else None
    xcoms = list(
        session.scalars(
            select(XCom)
            .where(XCom.dag_run_id == run.id, XCom.task_id == task_id, XCom.map_index == map_index)
            .order_by(XCom.key)
        )
    )
    return page(
        request,
        "_ti_state.html" if fragment == "state" else "task_instance.html",
        principal,
        dag=dag,
        run=run,
        ti=row,
        spec=_spec(session, run, task_id),
        tries=all_tries,
        chosen_try=chosen,
        log_lines=lines,
        log_token=token,
        mapped=mapped,
        xcoms=xcoms,
        triggered=_triggered_run(row, xcoms),
        pokes={"count": pokes[0], "first": pokes[1]},
        trigger=trigger,
        triggerer=triggerer,
        live=row.state in LIVE_STATES or row.state in ("scheduled", "up_for_retry", None),
        notice=NOTICES.get(notice or ""),
        nav="dags",
    )


@router.get(f"{TI_PATH}/log")
def log_lines(
    request: Request,
    dag_id: str,
    run_id: str,
    task_id: str,
    session: DbSession,
    _: UiViewer,
    try_number: Annotated[int, Query(alias="try", ge=1, le=schemas.DB_INT_MAX)],
    map_index: MapIndex = -1,
    token: str | None = None,
) -> JSONResponse:
    """New lines of a try's log for the live view: ``token`` says where the page is."""
    row, _run = find_instance(session, dag_id, run_id, task_id, map_index)
    lines, following = read_log(session, request.app.state.settings, row, try_number, token)
    return JSONResponse({"lines": lines, "token": following, "state": row.state})


@router.post(f"{TI_PATH}/clear")
def clear_task(
    dag_id: str,
    run_id: str,
    task_id: str,
    session: DbSession,
    _: UiUser,
    map_index: Annotated[int, Form(ge=-1, le=schemas.DB_INT_MAX)] = -1,
    downstream: Annotated[bool, Form()] = False,
    upstream: Annotated[bool, Form()] = False,
    past: Annotated[bool, Form()] = False,
    future: Annotated[bool, Form()] = False,
    only_failed: Annotated[bool, Form()] = False,
) -> Response:
    _row, run = find_instance(session, dag_id, run_id, task_id, map_index)
    chosen = clearing.relatives(
        run_tasks(session, run), [task_id], upstream=upstream, downstream=downstream
    )
    runs = runs_around(session, run, past=past, future=future)
    rows = [
        r
        for r in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id.in_([r.run_id for r in runs]),
                TaskInstance.task_id.in_(chosen),
            )
        )
        if r.task_id != task_id or r.map_index == map_index or r.run_id != run_id
    ]
    if only_failed:
        failed = {str(TaskInstanceState.FAILED), str(TaskInstanceState.UPSTREAM_FAILED)}
        rows = [r for r in rows if r.state in failed]
    if rows:
        clearing.clear(session, rows, now=utcnow())
        session.commit()
    target = ti_url(dag_id, run_id, task_id, map_index, notice="cleared")
    return RedirectResponse(target, status_code=303)


@router.post(f"{TI_PATH}/mark")
def mark_task(
    dag_id: str,
    run_id: str,
    task_id: str,
    session: DbSession,
    _: UiUser,
    state: Annotated[str, Form()],
    map_index: Annotated[int, Form(ge=-1, le=schemas.DB_INT_MAX)] = -1,
    downstream: Annotated[bool, Form()] = False,
    upstream: Annotated[bool, Form()] = False,
) -> Response:
    if state not in clearing.MARKABLE:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"A task instance can be marked {', '.join(clearing.MARKABLE)}, not {state!r}.",
        )
    _row, run = find_instance(session, dag_id, run_id, task_id, map_index)
    chosen = clearing.relatives(
        run_tasks(session, run), [task_id], upstream=upstream, downstream=downstream
    )
    rows = [
        r
        for r in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id.in_(chosen),
            )
        )
        if (r.task_id != task_id or r.map_index == map_index) and r.state != state
    ]
    if rows:
        clearing.mark(session, rows, TaskInstanceState(state), now=utcnow())
        session.commit()
    return RedirectResponse(
        ti_url(dag_id, run_id, task_id, map_index, notice="marked"), status_code=303
    )
