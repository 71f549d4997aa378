"""Tokens and roles for the REST API.

`POST /auth/token` trades a username and password for a signed JWT (HS512) carrying
the user's name and role. Every other route names the least role it needs, and one
dependency enforces it: no token is 401, a bad token or too small a role is 403 (as
Airflow's simple auth manager answers). Roles are ordered viewer < user < op < admin.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tradewind.auth.users import ROLES
from tradewind.crypto import api_secret_for
from tradewind.settings import Settings

ALGORITHM = "HS512"
AUDIENCE = "tradewind"
_bearer = HTTPBearer(auto_error=False, description="A token from POST /auth/token")


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: str


def issue_token(settings: Settings, username: str, role: str) -> str:
    now = int(time.time())
    claims = {
        "sub": username,
        "role": role,
        "jti": uuid.uuid4().hex,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + settings.api_token_expiration_seconds,
    }
    return jwt.encode(claims, api_secret_for(settings), algorithm=ALGORITHM)


def read_token(settings: Settings, token: str) -> Principal | None:
    """The principal a token names, or None when it is forged, expired or malformed."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            api_secret_for(settings),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "role", "exp"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("role") not in ROLES or not isinstance(claims.get("sub"), str):
        return None
    return Principal(claims["sub"], claims["role"])


def may(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def require(needed: str) -> Callable[..., Principal]:
    """A dependency: the caller's principal, if its role is at least ``needed``."""
    if needed not in ROLES:  # pragma: no cover - a programming error
        raise ValueError(needed)

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
        principal = read_token(request.app.state.settings, credentials.credentials)
        if principal is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Invalid JWT token")
        if not may(principal.role, needed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Forbidden: the role {principal.role!r} may not do this (needs {needed!r})",
            )
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
UserRole = Annotated[Principal, Depends(require("user"))]
Op = Annotated[Principal, Depends(require("op"))]
Admin = Annotated[Principal, Depends(require("admin"))]
