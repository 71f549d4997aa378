"""Tokens and roles for the REST API.

`POST /auth/token` trades a username and password for a signed JWT (HS512) carrying
the user's name and role. Every other route names the least role it needs, and one
dependency enforces it: no token is 401, a bad token or too small a role is 403 (as
Airflow's simple auth manager answers). Roles are ordered viewer < user < op < admin.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
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
    token_id: str = ""  # the token's jti: a UI session's CSRF token is derived from it


# The signing key per (configured key, home): read from its file once, not per request.
_signing_keys: dict[tuple[str | None, str], bytes] = {}
# Tokens already verified, with their expiry: checking a signature and decoding claims
# on every request cost as much as the database query of a small route.
_verified: OrderedDict[tuple[bytes, str, str], tuple[Principal, float]] = OrderedDict()
_VERIFIED_MAX = 4096
_verified_lock = threading.Lock()


def signing_key(settings: Settings) -> bytes:
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    ident = (configured, str(settings.home))
    key = _signing_keys.get(ident)
    if key is None:
        key = _signing_keys[ident] = api_secret_for(settings)
    return key


def issue_token(
    settings: Settings,
    username: str,
    role: str,
    *,
    audience: str = AUDIENCE,
    lifetime_seconds: int | None = None,
) -> str:
    """A signed token naming the user and role: an API bearer token, or (with the UI's
    audience) the value of a UI session cookie."""
    now = int(time.time())
    lifetime = lifetime_seconds or settings.api_token_expiration_seconds
    claims = {
        "sub": username,
        "role": role,
        "jti": uuid.uuid4().hex,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


def read_token(settings: Settings, token: str, *, audience: str = AUDIENCE) -> Principal | None:
    """The principal a token names, or None when it is forged, expired, malformed or
    meant for another audience."""
    key = signing_key(settings)
    now = time.time()
    with _verified_lock:
        known = _verified.get((key, audience, token))
    if known is not None and known[1] > now:
        return known[0]
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"require": ["sub", "role", "exp", "jti"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("role") not in ROLES or not isinstance(claims.get("sub"), str):
        return None
    principal = Principal(claims["sub"], claims["role"], str(claims["jti"]))
    with _verified_lock:
        _verified[(key, audience, token)] = (principal, float(claims["exp"]))
        if len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return principal


def may(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def require(needed: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal, if its role is at least ``needed``.

    Async because it does no I/O: checking a token in the event loop costs less than a
    hop to the thread pool."""
    if needed not in ROLES:  # pragma: no cover - a programming error
        raise ValueError(needed)

    async def dependency(
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
