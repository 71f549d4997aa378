"""A try that reads a secret and logs it leaves only ``***`` in its log."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tradewind import secrets_masker
from tradewind.db import session_scope
from tradewind.models import LogChunk
from tradewind.settings import Settings
from tradewind.variables import write_connection, write_variable

pytestmark = pytest.mark.integration

DAG = """
from tradewind import DAG, task
from tradewind.sdk.connection import Connection
from tradewind.sdk.variable import Variable

with DAG("leaky"):
    @task
    def careless():
        print("token is", Variable.get("service_api_token"))
        conn = Connection.get("warehouse")
        print("password is", conn.password, "and key", conn.extra_dejson["api_key"])
        print("region is", Variable.get("region"))

    careless()
"""


def test_secrets_read_by_a_try_are_masked_in_its_log(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from scheduler.dag_test import run_dag_test

    (dags_folder / "leaky.py").write_text(textwrap.dedent(DAG))
    with session_scope(session_factory) as session:
        write_variable(session, settings, "service_api_token", "tok-9f8e7d", None)
        write_variable(session, settings, "region", "eu-west-1", None)
        write_connection(
            session,
            settings,
            {
                "conn_id": "warehouse",
                "conn_type": "postgres",
                "password": "pg-s3cret",
                "extra": '{"api_key": "key-abc123", "sslmode": "require"}',
            },
        )
    try:
        result = run_dag_test(session_factory, settings, "leaky", echo=None)
    finally:
        secrets_masker.reset()
    assert result.state == "success"
    with session_factory() as session:
        log = "".join(session.scalars(select(LogChunk.content).where(LogChunk.dag_id == "leaky")))
    assert "token is ***" in log
    assert "password is *** and key ***" in log
    assert "region is eu-west-1" in log  # not a secret
    for secret in ("tok-9f8e7d", "pg-s3cret", "key-abc123"):
        assert secret not in log
