"""Creating and finding users (data functions: the caller commits)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tradewind.auth.passwords import hash_password
from tradewind.errors import TradewindError
from tradewind.models import User

ROLES = ("viewer", "user", "op", "admin")


def create_user(session: Session, username: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise TradewindError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if not username or len(username) > 256:
        raise TradewindError("a username must have 1 to 256 characters")
    if find_user(session, username) is not None:
        raise TradewindError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))
