"""Database access for variables and connections (the authoring API sits on top)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from tradewind import crypto
from tradewind.db import process_session_factory, read_session, session_scope
from tradewind.models import ConnectionModel, VariableModel
from tradewind.sdk.variable import looks_secret

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings


class VariableStore:
    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings

    @classmethod
    def for_process(cls) -> VariableStore:
        from tradewind.settings import get_settings

        return cls(process_session_factory(), get_settings())

    def get(self, key: str) -> str | None:
        with read_session(self.factory) as session:
            row = session.scalar(select(VariableModel).where(VariableModel.key == key))
            return None if row is None else read_variable(self.settings, row)

    def set(self, key: str, value: str, description: str | None = None) -> None:
        with session_scope(self.factory) as session:
            write_variable(session, self.settings, key, value, description)

    def delete(self, key: str) -> int:
        with session_scope(self.factory) as session:
            result = session.execute(delete(VariableModel).where(VariableModel.key == key))
            return int(result.rowcount)  # type: ignore[attr-defined]


def read_variable(settings: Settings, row: VariableModel) -> str | None:
    if row.val is None or not row.is_encrypted:
        return row.val
    return crypto.decrypt(settings, row.val)


def write_variable(
    session: Session, settings: Settings, key: str, value: str, description: str | None
) -> VariableModel:
    row = session.scalar(select(VariableModel).where(VariableModel.key == key))
    if row is None:
        row = VariableModel(key=key)
        session.add(row)
    secret = looks_secret(key)
    row.val = crypto.encrypt(settings, value) if secret else value
    row.is_encrypted = secret
    if description is not None:
        row.description = description
    return row


def read_connection(settings: Settings, row: ConnectionModel) -> dict[str, Any]:
    password = row.password
    if password is not None and row.is_encrypted:
        password = crypto.decrypt(settings, password)
    extra = row.extra
    if extra is not None and row.is_extra_encrypted:
        extra = crypto.decrypt(settings, extra)
    return {
        "conn_id": row.conn_id,
        "conn_type": row.conn_type,
        "description": row.description,
        "host": row.host,
        "schema": row.schema,
        "login": row.login,
        "password": password,
        "port": row.port,
        "extra": extra,
    }


def write_connection(
    session: Session, settings: Settings, fields: dict[str, Any]
) -> ConnectionModel:
    row = session.scalar(
        select(ConnectionModel).where(ConnectionModel.conn_id == fields["conn_id"])
    )
    if row is None:
        row = ConnectionModel(conn_id=fields["conn_id"])
        session.add(row)
    for name in ("conn_type", "description", "host", "schema", "login", "port"):
        if name in fields:
            setattr(row, name, fields[name])
    if "password" in fields:
        password = fields["password"]
        row.password = None if password is None else crypto.encrypt(settings, password)
        row.is_encrypted = password is not None
    if "extra" in fields:
        extra = fields["extra"]
        row.extra = None if extra is None else crypto.encrypt(settings, extra)
        row.is_extra_encrypted = extra is not None
    return row


def get_connection_fields(
    factory: sessionmaker[Session], settings: Settings, conn_id: str
) -> dict[str, Any] | None:
    with read_session(factory) as session:
        row = session.scalar(select(ConnectionModel).where(ConnectionModel.conn_id == conn_id))
        return None if row is None else read_connection(settings, row)
