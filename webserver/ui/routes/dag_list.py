"""The DAG list (the UI's home): search, filters, last runs, pause toggles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tradewind.dags import set_paused
from tradewind.models import DagModel
from webserver.api import present, schemas
from webserver.api.common import DbSession, Page, order, paginate_rows
from webserver.api.dags import DAG_ORDER, check_dag_exists, dag_query
from webserver.ui import queries
from webserver.ui.render import page
from webserver.ui.session import UiUser, UiViewer

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
RECENT_RUNS = 10
FILTERS = {"all": None, "active": False, "paused": True}


@router.get("/", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse("/dags", status_code=307)


@router.get("/dags", response_class=HTMLResponse)
def dag_list(
    request: Request,
    session: DbSession,
    principal: UiViewer,
    q: Annotated[str, Query(max_length=250)] = "",
    tag: Annotated[list[str] | None, Query()] = None,
    show: str = "all",
    failed: bool = False,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    query = dag_query(
        dag_id_pattern=q.replace("\x00", "") or None,
        tags=[t for t in tag or [] if t] or None,
        paused=FILTERS.get(show),
        last_dag_run_state=schemas.DagRunState.FAILED if failed else None,
    )
    query = order(query, None, DAG_ORDER, ["dag_id"], DagModel.dag_id)
    paging = Page(PAGE_SIZE, (page_number - 1) * PAGE_SIZE)
    rows, total = paginate_rows(session, query, paging)
    dags = [present.dag(row) for row in rows]
    return page(
        request,
        "dag_list.html",
        principal,
        dags=dags,
        total=total,
        page_number=page_number,
        pages=max(1, -(-total // PAGE_SIZE)),
        runs=queries.recent_runs(session, [d["dag_id"] for d in dags], RECENT_RUNS),
        import_errors=queries.import_error_count(session),
        all_tags=queries.tag_names(session),
        q=q,
        chosen_tags=[t for t in tag or [] if t],
        show=show if show in FILTERS else "all",
        failed=failed,
    )


@router.post("/dags/{dag_id}/pause")
async def toggle_pause(
    request: Request,
    dag_id: str,
    session: DbSession,
    _: UiUser,
    paused: Annotated[bool, Form()],
    next: Annotated[str, Form()] = "/dags",
) -> Response:
    """Pause or unpause; a script asking for JSON gets the new state, a plain form post
    goes back to the page it came from."""

    def apply() -> None:
        check_dag_exists(session, dag_id)
        set_paused(session, [dag_id], paused)
        session.commit()

    await run_in_threadpool(apply)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"dag_id": dag_id, "is_paused": paused})
    target = next if next.startswith("/") and not next.startswith("//") else "/dags"
    return RedirectResponse(target, status_code=303)
