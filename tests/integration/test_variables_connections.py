"""Variables and connections: environment overrides, the database, secrets encrypted."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tradewind import Connection, Variable
from tradewind.db import session_scope
from tradewind.errors import ConnectionNotFound, VariableNotFound
from tradewind.models import ConnectionModel, VariableModel
from tradewind.settings import Settings
from tradewind.variables import write_connection

pytestmark = pytest.mark.integration


def test_variables_round_trip_and_defaults(session_factory: sessionmaker[Session]) -> None:
    Variable.set("bucket", "s3://features")
    Variable.set("thresholds", {"auc": 0.8}, serialize_json=True)
    assert Variable.get("bucket") == "s3://features"
    assert Variable.get("thresholds", deserialize_json=True) == {"auc": 0.8}
    assert Variable.get("missing", default_var=None) is None
    with pytest.raises(VariableNotFound, match="'missing'"):
        Variable.get("missing")
    assert Variable.delete("bucket") == 1


def test_environment_overrides_the_database(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    Variable.set("region", "eu")
    monkeypatch.setenv("TRADEWIND_VAR_REGION", "us")
    assert Variable.get("region") == "us"


def test_secret_variables_are_encrypted_at_rest(session_factory: sessionmaker[Session]) -> None:
    Variable.set("warehouse_password", "hunter2")
    Variable.set("plain_setting", "visible")
    with session_factory() as session:
        rows = {v.key: v for v in session.scalars(select(VariableModel))}
    assert rows["warehouse_password"].is_encrypted
    assert "hunter2" not in (rows["warehouse_password"].val or "")
    assert rows["plain_setting"].val == "visible"
    assert Variable.get("warehouse_password") == "hunter2"


def test_connections_from_database_are_decrypted(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_scope(session_factory) as session:
        write_connection(
            session,
            settings,
            {
                "conn_id": "warehouse",
                "conn_type": "postgres",
                "host": "db.internal",
                "login": "etl",
                "password": "p@ss word",
                "port": 5432,
                "schema": "analytics",
                "extra": '{"sslmode": "require"}',
            },
        )
    with session_factory() as session:
        row = session.scalar(select(ConnectionModel))
        assert row is not None
        assert row.is_encrypted
        assert "p@ss" not in (row.password or "")
        assert row.is_extra_encrypted
        assert "sslmode" not in (row.extra or "")
    conn = Connection.get("warehouse")
    assert (conn.host, conn.login, conn.password, conn.port) == (
        "db.internal",
        "etl",
        "p@ss word",
        5432,
    )
    assert conn.extra_dejson == {"sslmode": "require"}
    assert (
        conn.get_uri() == "postgres://etl:p%40ss%20word@db.internal:5432/analytics?sslmode=require"
    )
    with pytest.raises(ConnectionNotFound):
        Connection.get("nope")


def test_connections_from_environment(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "TRADEWIND_CONN_API", "https://user:tok%2Fen@api.example.com:8443/v1?timeout=5"
    )
    conn = Connection.get("api")
    assert (conn.conn_type, conn.host, conn.password, conn.port, conn.schema) == (
        "https",
        "api.example.com",
        "tok/en",
        8443,
        "v1",
    )
    assert conn.extra_dejson == {"timeout": "5"}
    monkeypatch.setenv(
        "TRADEWIND_CONN_JSONCONN", '{"conn_type": "http", "host": "h", "extra": {"a": 1}}'
    )
    assert Connection.get("jsonconn").extra_dejson == {"a": 1}


def test_a_bad_fernet_key_is_named(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradewind.errors import ConfigError

    monkeypatch.setenv("TRADEWIND_FERNET_KEY", "not-a-key")
    with pytest.raises(ConfigError, match="TRADEWIND_FERNET_KEY"):
        Variable.set("api_token", "x")
