"""Schemathesis fuzzes the REST API against its own OpenAPI document, on SQLite and
Postgres: as an admin, on a seeded database, every operation answers without a 5xx and
with a status code, content type and body that the document declares."""

from __future__ import annotations

import tempfile
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_api import DAGS, PASSWORD, token
from tradewind.auth.users import create_user
from tradewind.db import session_scope
from tradewind.models import (
    ConnectionModel,
    DagModel,
    DagRun,
    ParseImportError,
    Pool,
    TaskInstance,
    VariableModel,
    XCom,
)
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

# Hypothesis keeps caches (constants read from our modules, gathered while pytest collects)
# in `./.hypothesis` unless told otherwise; the example database itself is off below.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tradewind-hypothesis")

EXAMPLES_PER_OPERATION = 20
TESTED_RUN = datetime(2024, 1, 2, tzinfo=UTC)
BROKEN_DAG = "from tradewind import DAG\nimport nonexistent_module_xyz\n"
# Made through the API once the DAGs are parsed, as a user would.
SEEDS: list[tuple[str, dict[str, Any]]] = [
    ("POST /api/v2/dags/etl_daily/dagRuns", {"logical_date": None, "dag_run_id": "first"}),
    (
        "POST /api/v2/dags/etl_daily/dagRuns",
        {"logical_date": "2024-03-01T00:00:00+00:00", "dag_run_id": "second", "conf": {"batch": 7}},
    ),
    ("PATCH /api/v2/dags/etl_daily/dagRuns/second/taskInstances/extract", {"new_state": "failed"}),
    ("POST /api/v2/variables", {"key": "threshold", "value": "7", "description": "d"}),
    ("POST /api/v2/variables", {"key": "api_token", "value": "s3cr3t"}),
    (
        "POST /api/v2/connections",
        {
            "connection_id": "warehouse",
            "conn_type": "postgres",
            "host": "db.internal",
            "password": "hunter2",
            "extra": '{"sslmode": "require", "api_key": "k-123"}',
        },
    ),
    ("POST /api/v2/pools", {"name": "gpu", "slots": 2, "description": "GPUs"}),
]


@pytest.fixture
def seeded_app(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> FastAPI:
    """The webserver's app on a database with parsed DAGs, an import error, a finished
    run of `mapped` (task instances, logs, XComs), two triggered runs of `etl_daily`
    (one with a failed task), a variable, a connection, a pool and an admin."""
    from scheduler.dag_processing.processor import DagFileProcessor
    from scheduler.dag_test import run_dag_test
    from webserver.app import create_app

    for name, source in {**DAGS, "broken.py": BROKEN_DAG}.items():
        (dags_folder / name).write_text(textwrap.dedent(source))
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_scope(session_factory) as session:
        create_user(session, "admin", PASSWORD, "admin")
    tested = run_dag_test(session_factory, settings, "mapped", logical_date=TESTED_RUN, echo=None)
    assert tested.state == "success"
    app = create_app(settings)
    with TestClient(app) as client:
        admin = token(client, "admin")
        for path, body in SEEDS:
            answer = client.request(*path.split(" "), json=body, headers=admin)
            assert answer.status_code in (200, 201), (path, answer.text)
    return app


def known_values(session: Session) -> dict[str, list[Any]]:
    """What the seeded database holds, by path parameter: the fuzzer draws from these
    half of the time, so the item routes answer from real rows and not only 404s."""
    queries: dict[str, Any] = {
        "dag_id": select(DagModel.dag_id),
        "dag_run_id": select(DagRun.run_id),
        "task_id": select(TaskInstance.task_id).distinct(),
        "xcom_key": select(XCom.key).distinct(),
        "variable_key": select(VariableModel.key),
        "connection_id": select(ConnectionModel.conn_id),
        "pool_name": select(Pool.pool),
        "import_error_id": select(ParseImportError.id),
        "map_index": select(TaskInstance.map_index).distinct(),
        "try_number": select(TaskInstance.try_number).distinct(),
    }
    values = {name: sorted(session.scalars(query)) for name, query in queries.items()}
    for name in ("dag_id", "dag_run_id", "task_id"):
        values[name].append("~")  # "any", where a route takes it
    return values


# Schemathesis's default checks, among them not_a_server_error, status_code_conformance,
# content_type_conformance, response_schema_conformance and allow_header_conformance, with
# two adjustments and exceptions for two operations:
CHECKS: dict[str, Any] = {
    # A well-formed request may still be refused with a 400 for what the document cannot
    # say: an unknown order_by name, a body key unlike the URL's, a conf the DAG's params
    # refuse, the default pool's deletion. A 422 for a request the document allows fails.
    "positive_data_acceptance": {
        "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
    },
    # Request bodies are parsed in pydantic's lax mode, as Airflow's are: 0 for false or
    # "5432" for a port is accepted, which this check counts as schema-violating data
    # accepted. (With those coercions filtered out, it found nothing else.)
    "negative_data_rejection": {"enabled": False},
}
OPERATIONS: list[dict[str, Any]] = [
    {
        # A trigger whose data_interval_start is after its end is a 422 (as in Airflow); the
        # document cannot say "start <= end", so such a request looks well formed to it.
        "include-method": "POST",
        "include-path": "/api/v2/dags/{dag_id}/dagRuns",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    {
        # It answers when the run finishes, and nothing runs the seeded runs here: a
        # request would never end. tests/integration/test_api_wait.py covers it, with a
        # scheduler, as a client uses it.
        "include-path": "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/wait",
        "enabled": False,
    },
]
# POST /auth/token is fuzzed too: after five failed logins from the test client its answer
# is a 429, but what it must get right (the 422 and 415 of a bad body, the documented
# statuses, the shape of each answer) is checked before the limiter is asked.


@pytest.fixture
def api_schema(
    seeded_app: FastAPI, session_factory: sessionmaker[Session]
) -> schemathesis.BaseSchema:
    with TestClient(seeded_app) as client:
        bearer = token(client, "admin")["Authorization"].removeprefix("Bearer ")
    with session_factory() as session:
        values = known_values(session)
    config = schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                "database": "none",
                # A failure is reported as found: shrinking a server error formats its
                # traceback again at every step, minutes on a failing run.
                "no-shrink": True,
            },
            "auth": {"openapi": {"HTTPBearer": {"bearer": bearer}}},
            "checks": CHECKS,
            "operations": OPERATIONS,
            "dictionaries": {name: {"values": found} for name, found in values.items()},
            "parameters": {
                f"path.{name}": {"dictionary": name, "probability": 0.5} for name in values
            },
        }
    )
    return schemathesis.openapi.from_asgi("/api/v2/openapi.json", seeded_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_answers_as_the_openapi_document_says(case: schemathesis.Case) -> None:
    case.call_and_validate()
