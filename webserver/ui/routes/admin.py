"""Import errors and the admin pages: variables, connections, pools, users.

Secrets never reach a page: variable values whose key looks secret, connection
passwords and secret extras are masked exactly as the API masks them. Editing goes
through the CLI or the REST API for now; these pages show what is there.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from tradewind.models import ConnectionModel, ParseImportError, Pool, User, VariableModel
from webserver.api.common import DbSession
from webserver.api.resources import present_connection, present_pools, present_variable
from webserver.security import may
from webserver.ui.render import page
from webserver.ui.session import UiViewer

router = APIRouter(include_in_schema=False)


@router.get("/import-errors", response_class=HTMLResponse)
def import_errors(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    rows = list(session.scalars(select(ParseImportError).order_by(ParseImportError.filename)))
    return page(request, "import_errors.html", principal, errors=rows, nav="import_errors")


@router.get("/admin/variables", response_class=HTMLResponse)
def variables(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    rows = session.scalars(select(VariableModel).order_by(VariableModel.key))
    shown = [present_variable(request, row) for row in rows]
    return page(request, "variables.html", principal, variables=shown, nav="variables")


@router.get("/admin/connections", response_class=HTMLResponse)
def connections(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    rows = session.scalars(select(ConnectionModel).order_by(ConnectionModel.conn_id))
    shown = [present_connection(request, row) for row in rows]
    return page(request, "connections.html", principal, connections=shown, nav="connections")


@router.get("/admin/pools", response_class=HTMLResponse)
def pools(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    rows = list(session.scalars(select(Pool).order_by(Pool.pool)))
    return page(request, "pools.html", principal, pools=present_pools(session, rows), nav="pools")


@router.get("/admin/users", response_class=HTMLResponse)
def users(request: Request, session: DbSession, principal: UiViewer) -> HTMLResponse:
    if not may(principal.role, "admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only an admin may see the users.")
    rows = list(session.scalars(select(User).order_by(User.username)))
    return page(request, "users.html", principal, users=rows, nav="users")
