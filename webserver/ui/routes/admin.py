"""Import errors and the admin pages: variables, connections, pools, users.

Secrets never reach a page: variable values whose key looks secret, connection
passwords and secret extras are masked exactly as the API masks them. The op role and
above can set and delete variables and pools here; connections and users are edited
through the REST API or the CLI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind.models import ConnectionModel, ParseImportError, Pool, User, VariableModel
from tradewind.variables import write_variable
from webserver.api.common import DbSession
from webserver.api.resources import (
    DEFAULT_POOL,
    present_connection,
    present_pools,
    present_variable,
)
from webserver.security import Principal, may
from webserver.ui.render import page
from webserver.ui.session import UiOp, UiViewer

router = APIRouter(include_in_schema=False)


@router.get("/import-errors", response_class=HTMLResponse)
def import_errors(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    rows = list(session.scalars(select(ParseImportError).order_by(ParseImportError.filename)))
    return page(request, "import_errors.html", principal, errors=rows, nav="import_errors")


def _variables_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = session.scalars(select(VariableModel).order_by(VariableModel.key))
    return page(
        request,
        "variables.html",
        principal,
        status_code=status_code,
        variables=[present_variable(request, row) for row in rows],
        error=error,
        notice=notice,
        nav="variables",
    )


@router.get("/admin/variables", response_class=HTMLResponse)
def variables(
    request: Request, session: DbSession, principal: UiViewer, notice: str | None = None
) -> HTMLResponse:
    shown = {"saved": "Variable saved.", "deleted": "Variable deleted."}.get(notice or "")
    return _variables_page(request, session, principal, notice=shown)


@router.post("/admin/variables", response_class=HTMLResponse)
def set_variable(
    request: Request,
    session: DbSession,
    principal: UiOp,
    key: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    """Create a variable, or replace the value of an existing one."""
    key = key.strip()
    problem = _bad_name(key, 250)
    if problem:
        return _variables_page(
            request, session, principal, error=f"Key: {problem}", status_code=400
        )
    if "\x00" in value or "\x00" in description:
        return _variables_page(
            request, session, principal, error="A NUL character is not allowed.", status_code=400
        )
    write_variable(session, request.app.state.settings, key, value, description or None)
    session.commit()
    return RedirectResponse("/admin/variables?notice=saved", status_code=303)


@router.post("/admin/variables/{key}/delete")
def delete_variable(key: str, session: DbSession, _: UiOp) -> Response:
    row = session.scalar(select(VariableModel).where(VariableModel.key == key))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No variable {key!r}.")
    session.delete(row)
    session.commit()
    return RedirectResponse("/admin/variables?notice=deleted", status_code=303)


def _bad_name(name: str, longest: int) -> str | None:
    if not name:
        return "required."
    if len(name) > longest:
        return f"at most {longest} characters."
    if "\x00" in name or "/" in name:
        return "may not contain NUL or '/'."
    return None


@router.get("/admin/connections", response_class=HTMLResponse)
def connections(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    rows = session.scalars(select(ConnectionModel).order_by(ConnectionModel.conn_id))
    shown = [present_connection(request, row) for row in rows]
    return page(request, "connections.html", principal, connections=shown, nav="connections")


def _pools_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = list(session.scalars(select(Pool).order_by(Pool.pool)))
    return page(
        request,
        "pools.html",
        principal,
        status_code=status_code,
        pools=present_pools(session, rows),
        default_pool=DEFAULT_POOL,
        error=error,
        notice=notice,
        nav="pools",
    )


@router.get("/admin/pools", response_class=HTMLResponse)
def pools(
    request: Request, session: DbSession, principal: UiViewer, notice: str | None = None
) -> HTMLResponse:
    shown = {"saved": "Pool saved.", "deleted": "Pool deleted."}.get(notice or "")
    return _pools_page(request, session, principal, notice=shown)


@router.post("/admin/pools", response_class=HTMLResponse)
def set_pool(
    request: Request,
    session: DbSession,
    principal: UiOp,
    name: Annotated[str, Form()] = "",
    slots: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    """Create a pool, or change the slots and description of an existing one."""
    name = name.strip()
    problem = _bad_name(name, 256)
    try:
        count = int(slots)
    except ValueError:
        count = None
    if problem is None and (count is None or not -1 <= count <= 2**31 - 1):
        problem = "Slots: a whole number, -1 for unlimited."
    elif problem is not None:
        problem = f"Name: {problem}"
    if problem is not None or count is None:
        return _pools_page(request, session, principal, error=problem, status_code=400)
    row = session.scalar(select(Pool).where(Pool.pool == name))
    if row is None:
        row = Pool(pool=name, include_deferred=False)
        session.add(row)
    row.slots = count
    if name != DEFAULT_POOL:
        row.description = description.replace("\x00", "") or None
    session.commit()
    return RedirectResponse("/admin/pools?notice=saved", status_code=303)


@router.post("/admin/pools/{name}/delete")
def delete_pool(name: str, session: DbSession, _: UiOp) -> Response:
    if name == DEFAULT_POOL:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "The default pool cannot be deleted.")
    row = session.scalar(select(Pool).where(Pool.pool == name))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No pool {name!r}.")
    session.delete(row)
    session.commit()
    return RedirectResponse("/admin/pools?notice=deleted", status_code=303)


@router.get("/admin/users", response_class=HTMLResponse)
def users(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    if not may(principal.role, "admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only an admin may see the users.")
    rows = list(session.scalars(select(User).order_by(User.username)))
    return page(request, "users.html", principal, users=rows, nav="users")
