"""A DAG's pages: Grid, Graph, Gantt, Runs, Code and Details."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind import backfills
from tradewind.errors import BackfillError
from tradewind.models import Backfill, DagRun, DagVersion, TaskInstance
from tradewind.models.base import utcnow
from webserver.api import present, schemas
from webserver.api.common import DbSession, Page, paginate_rows
from webserver.api.dag_runs import RUN_ROWS, find_run
from webserver.api.dags import dag_row
from webserver.security import Principal
from webserver.ui import graph, grid, highlight, queries
from webserver.ui.render import dag_url, page
from webserver.ui.session import UiUser, UiViewer

router = APIRouter(include_in_schema=False)

LIVE_RUN_STATES = {"queued", "running"}
RUNS_PAGE = 50
PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]


def _dag(session: Session, dag_id: str) -> dict[str, Any]:
    return present.dag(dag_row(session, dag_id)._asdict())


def _view(
    request: Request,
    principal: Principal,
    template: str,
    dag: dict[str, Any],
    tab: str,
    **context: Any,
) -> HTMLResponse:
    return page(request, template, principal, dag=dag, tab=tab, nav="dags", **context)


def _runs_page(session: Session, dag_id: str, count: int, page_number: int) -> list[Any]:
    """``count`` runs, newest first, skipping ``page_number - 1`` pages of them."""
    return list(
        session.execute(
            select(
                DagRun.run_id,
                DagRun.state,
                DagRun.run_type,
                DagRun.run_after,
                DagRun.logical_date,
                DagRun.start_date,
                DagRun.end_date,
                DagRun.dag_version_id,
            )
            .where(DagRun.dag_id == dag_id)
            .order_by(DagRun.run_after.desc(), DagRun.id.desc())
            .limit(count)
            .offset((page_number - 1) * count)
        ).all()
    )


@router.get("/dags/{dag_id}", response_class=HTMLResponse)
def grid_view(
    request: Request,
    dag_id: str,
    session: DbSession,
    principal: UiViewer,
    page_number: PageNumber = 1,
    fragment: str | None = None,
) -> HTMLResponse:
    dag = _dag(session, dag_id)
    count = request.app.state.settings.ui_grid_runs
    runs = list(reversed(_runs_page(session, dag_id, count, page_number)))
    version = queries.latest_serialized(session, dag_id)
    run_ids = [r.run_id for r in runs]
    rows = grid.build_rows(
        version.serialized if version else {},
        run_ids,
        queries.grid_states(session, dag_id, run_ids),
    )
    context = {
        "runs": runs,
        "rows": rows,
        "page_number": page_number,
        "has_older": len(runs) == count,
        "live": any(r.state in LIVE_RUN_STATES for r in runs),
    }
    template = "_grid.html" if fragment == "grid" else "dag_grid.html"
    return _view(request, principal, template, dag, "grid", **context)


def _chosen_run(session: Session, dag_id: str, run_id: str | None) -> DagRun | None:
    if run_id:
        return find_run(session, dag_id, run_id)
    return session.scalar(
        select(DagRun)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(1)
    )


def _instances(session: Session, dag_id: str, run_id: str) -> list[TaskInstance]:
    return list(
        session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        )
    )


def _run_version(session: Session, dag_id: str, run: DagRun | None) -> DagVersion | None:
    if run is not None and run.dag_version_id:
        version = session.get(DagVersion, run.dag_version_id)
        if version is not None:
            return version
    return queries.latest_serialized(session, dag_id)


@router.get("/dags/{dag_id}/graph", response_class=HTMLResponse)
def graph_view(
    request: Request,
    dag_id: str,
    session: DbSession,
    principal: UiViewer,
    run_id: str | None = None,
    fragment: str | None = None,
) -> HTMLResponse:
    dag = _dag(session, dag_id)
    run = _chosen_run(session, dag_id, run_id)
    version = _run_version(session, dag_id, run)
    states: dict[str, dict[str, int]] = {}
    if run is not None:
        for row in _instances(session, dag_id, run.run_id):
            counts = states.setdefault(row.task_id, {})
            counts[row.state or "no_status"] = counts.get(row.state or "no_status", 0) + 1
    node_states = {task_id: grid.most_pressing(c) for task_id, c in states.items()}
    context = {
        "run": run,
        "layout": graph.layout(version.serialized if version else {}),
        "node_states": node_states,
        "recent": _runs_page(session, dag_id, 25, 1),
        "live": run is not None and run.state in LIVE_RUN_STATES,
    }
    template = "_graph.html" if fragment == "graph" else "dag_graph.html"
    return _view(request, principal, template, dag, "graph", **context)


@router.get("/dags/{dag_id}/gantt", response_class=HTMLResponse)
def gantt_view(
    request: Request,
    dag_id: str,
    session: DbSession,
    principal: UiViewer,
    run_id: str | None = None,
    fragment: str | None = None,
) -> HTMLResponse:
    dag = _dag(session, dag_id)
    run = _chosen_run(session, dag_id, run_id)
    bars: list[dict[str, Any]] = []
    if run is not None:
        bars = gantt_bars(run, _instances(session, dag_id, run.run_id), utcnow())
    context = {
        "run": run,
        "bars": bars,
        "recent": _runs_page(session, dag_id, 25, 1),
        "live": run is not None and run.state in LIVE_RUN_STATES,
    }
    template = "_gantt.html" if fragment == "gantt" else "dag_gantt.html"
    return _view(request, principal, template, dag, "gantt", **context)


def gantt_bars(run: DagRun, rows: list[TaskInstance], now: datetime) -> list[dict[str, Any]]:
    """Each started instance as a bar: its offset and length in percent of the span from
    the run's start to the last end (``now`` for what still runs)."""
    started = [(r, r.start_date) for r in rows if r.start_date is not None]
    if not started:
        return []
    origin = min([begin for _, begin in started] + ([run.start_date] if run.start_date else []))
    finish = max((row.end_date or now) for row, _ in started)
    if run.state in LIVE_RUN_STATES:
        finish = now  # the timeline of a run still going reaches the present
    span = max((finish - origin).total_seconds(), 0.001)
    bars = []
    for row, begin in sorted(started, key=lambda pair: (pair[1], pair[0].task_id)):
        length = ((row.end_date or now) - begin).total_seconds()
        bars.append(
            {
                "row": row,
                "left": 100 * (begin - origin).total_seconds() / span,
                "width": max(100 * length / span, 0.4),
                "seconds": length,
            }
        )
    return bars


RECENT_BACKFILLS = 5
BACKFILL_NOTICES = {
    "pause": "Backfill paused: it creates and starts no more runs.",
    "unpause": "Backfill resumed.",
    "cancel": "Backfill cancelled: no more runs; its queued runs failed.",
}


@router.get("/dags/{dag_id}/runs", response_class=HTMLResponse)
def runs_view(
    request: Request,
    dag_id: str,
    session: DbSession,
    principal: UiViewer,
    state: schemas.DagRunState | None = None,
    run_type: schemas.DagRunType | None = None,
    page_number: PageNumber = 1,
    notice: str | None = None,
) -> HTMLResponse:
    dag = _dag(session, dag_id)
    query = RUN_ROWS.where(DagRun.dag_id == dag_id)
    if state is not None:
        query = query.where(DagRun.state == str(state))
    if run_type is not None:
        query = query.where(DagRun.run_type == str(run_type))
    query = query.order_by(DagRun.run_after.desc(), DagRun.id.desc())
    rows, total = paginate_rows(session, query, Page(RUNS_PAGE, (page_number - 1) * RUNS_PAGE))
    recent = list(
        session.scalars(
            select(Backfill)
            .where(Backfill.dag_id == dag_id)
            .order_by(Backfill.id.desc())
            .limit(RECENT_BACKFILLS)
        )
    )
    progress = backfills.progress(session, [b.id for b in recent])
    return _view(
        request,
        principal,
        "dag_runs.html",
        dag,
        "runs",
        runs=[present.dag_run(row) for row in rows],
        total=total,
        page_number=page_number,
        pages=max(1, -(-total // RUNS_PAGE)),
        state=str(state) if state else "",
        run_type=str(run_type) if run_type else "",
        run_states=[s.value for s in schemas.DagRunState],
        run_types=[t.value for t in schemas.DagRunType],
        backfills=[(b, progress[b.id]) for b in recent],
        notice=BACKFILL_NOTICES.get(notice or ""),
    )


@router.post("/dags/{dag_id}/backfills/{backfill_id}/{action}")
def change_backfill(
    dag_id: str,
    backfill_id: Annotated[int, Path(ge=1, le=schemas.DB_INT_MAX)],
    action: Literal["pause", "unpause", "cancel"],
    session: DbSession,
    _: UiUser,
) -> Response:
    """Pause, resume or cancel a backfill from the runs page."""
    found = session.get(Backfill, backfill_id)
    if found is None or found.dag_id != dag_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No backfill {backfill_id} of {dag_id}.")
    try:
        backfills.change(session, backfill_id, action, now=utcnow())
    except BackfillError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    session.commit()
    return RedirectResponse(f"{dag_url(dag_id, 'runs')}?notice={action}", status_code=303)


def _versions(session: Session, dag_id: str) -> list[DagVersion]:
    return list(
        session.scalars(
            select(DagVersion)
            .where(DagVersion.dag_id == dag_id)
            .order_by(DagVersion.version_number.desc())
        )
    )


@router.get("/dags/{dag_id}/code", response_class=HTMLResponse)
def code_view(
    request: Request,
    dag_id: str,
    session: DbSession,
    principal: UiViewer,
    version_number: Annotated[int | None, Query(alias="version", ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    dag = _dag(session, dag_id)
    versions = _versions(session, dag_id)
    chosen = next((v for v in versions if version_number in (None, v.version_number)), None)
    source = chosen.source_code if chosen is not None else None
    return _view(
        request,
        principal,
        "dag_code.html",
        dag,
        "code",
        versions=versions,
        chosen=chosen,
        code=highlight.python_html(source) if source else None,
    )


@router.get("/dags/{dag_id}/details", response_class=HTMLResponse)
def details_view(
    request: Request, dag_id: str, session: DbSession, principal: UiViewer
) -> HTMLResponse:
    dag = _dag(session, dag_id)
    versions = _versions(session, dag_id)
    serialized = versions[0].serialized if versions else {}
    return _view(
        request,
        principal,
        "dag_details.html",
        dag,
        "details",
        versions=versions,
        serialized=serialized,
    )
