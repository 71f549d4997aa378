"""Logging in and out of the UI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from webserver.api.auth import authenticate
from webserver.ui.render import bare
from webserver.ui.session import UiAnyone, current, end_session, start_session

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: a login link must not send the user elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/dags"
    return target


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    if current(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return bare(request, "login.html", next=_safe_next(next), error=None, username="")


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str | None, Form()] = None,
) -> Response:
    target = _safe_next(next)
    try:
        name, role = await authenticate(request, username, password)
    except HTTPException as exc:
        return bare(
            request,
            "login.html",
            status_code=exc.status_code,
            next=target,
            error=exc.detail,
            username=username,
        )
    response = RedirectResponse(target, status_code=303)
    start_session(response, request, name, role)
    return response


@router.post("/logout")
async def logout(_: UiAnyone) -> Response:
    response = RedirectResponse("/login", status_code=303)
    end_session(response)
    return response
