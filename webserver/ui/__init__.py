"""The web UI: server-rendered pages over the same query functions as the REST API.

`install(app)` adds the pages, the static files and the UI's error pages to the
webserver's app. Everything the browser loads is served from here (no CDN).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from webserver.api.common import with_full_allow
from webserver.ui.render import HERE, bare, page
from webserver.ui.routes import (
    admin,
    assets,
    dag_list,
    dag_views,
    login,
    run_view,
    task_view,
    trigger,
)
from webserver.ui.session import LoginRequired, current

_MACHINE_PATHS = ("/api/", "/auth/", "/docs", "/static/")
_HEADINGS = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


def _for_machines(request: Request) -> bool:
    return request.url.path.startswith(_MACHINE_PATHS)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (login, dag_list, trigger, dag_views, run_view, task_view, admin, assets):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        exc = with_full_allow(request, exc)
        if _for_machines(request) or "application/json" in request.headers.get("accept", ""):
            return await http_exception_handler(request, exc)
        answer = error_page(request, exc.status_code, str(exc.detail))
        answer.headers.update(exc.headers or {})
        return answer

    @app.exception_handler(RequestValidationError)
    async def _bad_input(request: Request, exc: RequestValidationError) -> Response:
        if _for_machines(request):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return error_page(request, 400, f"Bad input: {problems}")


def error_page(request: Request, status_code: int, detail: str) -> Response:
    heading = _HEADINGS.get(status_code, "Something went wrong")
    principal = current(request)
    if principal is None:
        return bare(request, "error.html", status_code=status_code, heading=heading, detail=detail)
    return page(
        request,
        "error.html",
        principal,
        status_code=status_code,
        heading=heading,
        detail=detail,
    )
