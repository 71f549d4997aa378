"""Who is looking at the UI: the session cookie, CSRF tokens, and the role checks.

A login sets one cookie: a signed token (the API's kind, with the UI's own audience, so
neither can stand in for the other) that is HttpOnly and SameSite=Lax. Every
state-changing request must also carry a CSRF token (a form field or the
``X-CSRF-Token`` header) derived from that session's token id with the signing key: a
page of another site can make the browser send the cookie but cannot know the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response, status

from tradewind.settings import Settings
from webserver.security import Principal, issue_token, may, read_token, signing_key

COOKIE = "tradewind_session"
AUDIENCE = "tradewind-ui"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """Raised when a page needs a login; the app answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def start_session(response: Response, request: Request, username: str, role: str) -> None:
    settings: Settings = request.app.state.settings
    token = issue_token(
        settings,
        username,
        role,
        audience=AUDIENCE,
        lifetime_seconds=settings.ui_session_seconds,
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.ui_session_seconds,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def current(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return read_token(request.app.state.settings, token, audience=AUDIENCE)


def csrf_token(request: Request, principal: Principal) -> str:
    key = signing_key(request.app.state.settings)
    return hmac.new(key, f"csrf:{principal.token_id}".encode(), hashlib.sha256).hexdigest()


def here(request: Request) -> str:
    """The path and query of this request: where to come back to after logging in."""
    query = f"?{request.url.query}" if request.url.query else ""
    return quote(request.url.path + query, safe="/?=&")


async def viewer(request: Request) -> Principal:
    """A page's dependency: the logged-in principal, or a redirect to the login page."""
    principal = current(request)
    if principal is None:
        raise LoginRequired(here(request))
    request.state.principal = principal
    return principal


def _check_role(principal: Principal, needed: str) -> None:
    if not may(principal.role, needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Your role ({principal.role}) may not do this; it needs {needed} or above.",
        )


async def user_page(request: Request) -> Principal:
    """A page only the user role and above may open (a form that changes things)."""
    principal = await viewer(request)
    _check_role(principal, "user")
    return principal


def acting(needed: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency of a state-changing route: logged in, a role of at least ``needed``,
    and the session's CSRF token in the form or header. A failure is a 403 page."""

    async def dependency(request: Request) -> Principal:
        principal = await viewer(request)
        _check_role(principal, needed)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, csrf_token(request, principal)):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "The form's security token is missing or stale; reload the page and retry.",
            )
        return principal

    return dependency


UiViewer = Annotated[Principal, Depends(viewer)]
UiUserPage = Annotated[Principal, Depends(user_page)]
UiAnyone = Annotated[Principal, Depends(acting("viewer"))]  # any role, with the CSRF token
UiUser = Annotated[Principal, Depends(acting("user"))]
UiOp = Annotated[Principal, Depends(acting("op"))]
UiAdmin = Annotated[Principal, Depends(acting("admin"))]
