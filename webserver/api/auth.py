"""`POST /auth/token`: a username and password for a signed, expiring token.

Failed logins are rate-limited per username and per client address (in each webserver
process), so guessing passwords is slow even though scrypt already is.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from tradewind.auth.passwords import hash_password, verify_password
from tradewind.auth.users import find_user
from webserver.api import schemas
from webserver.security import issue_token

router = APIRouter(tags=["Auth"])

MAX_FAILURES = 5
WINDOW_SECONDS = 300.0
# Checked for unknown users too, so a login takes as long whether or not the user exists.
_DUMMY_HASH = hash_password("tradewind-no-such-user")


class FailedLogins:
    """Sliding-window counts of failed logins per key (a username or an address)."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, *keys: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                if len(recent) >= self.limit:
                    wait = max(wait, recent[0] + self.window - now)
        return wait

    def record(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent


async def _credentials(request: Request) -> schemas.LoginBody:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    data: Any
    if content_type == "application/json":
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}]
            ) from None
    elif content_type == "application/x-www-form-urlencoded":
        data = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "Only application/json or application/x-www-form-urlencoded is supported",
        )
    try:
        return schemas.LoginBody.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


# The body is read by hand (JSON or a form), so FastAPI does not document its 422 itself.
_VALIDATION_ERROR = {
    "description": "Validation Error",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
    },
}


@router.post(
    "/auth/token",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.LoginResponse,
    responses={**schemas.errors(401, 415, 429), 422: _VALIDATION_ERROR},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schemas.LoginBody.model_json_schema()},
                "application/x-www-form-urlencoded": {
                    "schema": schemas.LoginBody.model_json_schema()
                },
            },
        }
    },
)
async def create_token(request: Request) -> schemas.LoginResponse:
    """Trade a username and password (JSON or a form) for a bearer token."""
    body = await _credentials(request)
    username, role = await authenticate(request, body.username, body.password)
    token = issue_token(request.app.state.settings, username, role)
    return schemas.LoginResponse(access_token=token)


async def authenticate(request: Request, username: str, password: str) -> tuple[str, str]:
    """The user's name and role if the password is right: the one login check of the API
    and the UI. Failed attempts are counted per user and per address; 401 for wrong
    credentials, 429 while too many recent failures block the user or the address."""
    limiter: FailedLogins = request.app.state.failed_logins
    address = f"address:{request.client.host if request.client else 'unknown'}"
    user_key = f"user:{username}"
    wait = limiter.blocked(user_key, address)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many failed logins; try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    factory = request.app.state.factory

    def check() -> tuple[str, str] | None:
        with factory() as session:
            user = find_user(session, username)
            if user is None or not user.active:
                verify_password(password, _DUMMY_HASH)
                return None
            if not verify_password(password, user.password_hash):
                return None
            return user.username, user.role

    found = await run_in_threadpool(check)
    if found is None:
        limiter.record(user_key, address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid credentials")
    limiter.clear(user_key)
    return found
