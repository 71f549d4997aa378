"""The REST API in process (the ASGI app, over HTTP semantics), on SQLite and Postgres:
every route, every role, and the error paths the official client depends on."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tradewind.auth.users import ROLES, create_user
from tradewind.db import session_scope
from tradewind.models import DagRun, TaskInstance
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

DAGS = {
    "etl.py": """
    from datetime import datetime, timedelta
    from tradewind import DAG, Param
    from tradewind.operators.bash import BashOperator
    from tradewind.operators.python import PythonOperator

    with DAG(
        "etl_daily",
        schedule="@daily",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        tags=["etl", "daily"],
        dagrun_timeout=timedelta(hours=1),
        params={"batch": Param(10, type="integer", minimum=1, maximum=100)},
        default_args={"owner": "data-eng", "retries": 2},
    ):
        extract = BashOperator(task_id="extract", bash_command="echo extract")
        load = PythonOperator(task_id="load", python_callable=lambda: None)
        extract >> load
    """,
    "ml.py": """
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator

    with DAG("ml_train", tags=["ml"], description="Train the model"):
        EmptyOperator(task_id="train")
    """,
    "reports.py": """
    from tradewind import DAG
    from tradewind.operators.empty import EmptyOperator

    for name in ("report_a", "report_b", "Report_C"):
        with DAG(name, tags=["etl", "reports"]):
            EmptyOperator(task_id="render")
    """,
}
DAGS["mapped.py"] = """
from tradewind import DAG, task

with DAG("mapped"):
    @task
    def numbers():
        print("making numbers")
        return [1, 2, 3]

    @task
    def double(n):
        print(f"doubling {n}")
        return {"n": n, "twice": 2 * n}

    double.expand(n=numbers())
"""
PASSWORD = "correct horse battery staple"


@pytest.fixture
def api(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    yield from api_client(dags_folder, settings, session_factory)


def api_client(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    """The app on the example DAGs, with one user per role (password `PASSWORD`)."""
    from scheduler.dag_processing.processor import DagFileProcessor
    from webserver.app import create_app

    for name, source in DAGS.items():
        (dags_folder / name).write_text(textwrap.dedent(source))
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_scope(session_factory) as session:
        for role in ROLES:
            create_user(session, role, PASSWORD, role)
    with TestClient(create_app(settings)) as client:
        yield client


def token(api: TestClient, role: str = "admin") -> dict[str, str]:
    answer = api.post("/auth/token", json={"username": role, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


# --- health, version, auth ------------------------------------------------------------------


def test_health_and_version_need_no_token(api: TestClient) -> None:
    health = api.get("/api/v2/monitor/health")
    assert health.status_code == 200
    body = health.json()
    assert body["metadatabase"] == {"status": "healthy"}
    assert body["scheduler"] == {"status": "unhealthy", "latest_scheduler_heartbeat": None}
    assert body["triggerer"] == {"status": None, "latest_triggerer_heartbeat": None}
    version = api.get("/api/v2/version")
    assert version.status_code == 200
    assert isinstance(version.json()["version"], str)


def test_a_double_slash_after_the_host_is_tolerated(api: TestClient) -> None:
    assert api.get("http://testserver//api/v2/version").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        # Several routes share the path; the router alone would name the first one's.
        ("OPTIONS", "/api/v2/pools/some_pool", "DELETE, GET, HEAD, PATCH"),
        ("PUT", "/api/v2/dags/etl_daily", "GET, HEAD, PATCH"),
        ("POST", "/api/v2/variables/x", "DELETE, GET, HEAD, PATCH"),
        # A literal path that another route's parameter would take: GET is not allowed.
        ("GET", "/api/v2/backfills/dry_run", "POST"),
        ("DELETE", "/api/v2/dags/etl_daily/dagRuns/r/wait", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_a_405_naming_every_allowed_one(
    api: TestClient, method: str, path: str, allow: str
) -> None:
    answer = api.request(method, path, headers=token(api))
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow


def test_tokens_come_from_json_or_a_form_and_bad_logins_are_refused(api: TestClient) -> None:
    assert (
        api.post("/auth/token", json={"username": "viewer", "password": PASSWORD}).status_code
        == 201
    )
    form = api.post("/auth/token", data={"username": "viewer", "password": PASSWORD})
    assert form.status_code == 201
    assert form.json()["access_token"]
    wrong = api.post("/auth/token", json={"username": "viewer", "password": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid credentials"})
    nobody = api.post("/auth/token", json={"username": "ghost", "password": "nope"})
    assert nobody.status_code == 401
    missing = api.post("/auth/token", json={"username": "viewer"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "password"]
    extra = api.post("/auth/token", json={"username": "a", "password": "b", "role": "admin"})
    assert extra.status_code == 422
    text = api.post("/auth/token", content="x", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415


def test_failed_logins_are_rate_limited_per_user(api: TestClient) -> None:
    for _ in range(5):
        api.post("/auth/token", json={"username": "op", "password": "guess"})
    blocked = api.post("/auth/token", json={"username": "op", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0


def test_no_token_is_401_and_a_bad_or_expired_token_is_403(
    api: TestClient, settings: Settings
) -> None:
    from tradewind.crypto import api_secret_for

    assert api.get("/api/v2/dags").json() == {"detail": "Not authenticated"}
    assert api.get("/api/v2/dags").status_code == 401
    garbage = api.get("/api/v2/dags", headers={"Authorization": "Bearer garbage"})
    assert (garbage.status_code, garbage.json()) == (403, {"detail": "Invalid JWT token"})
    claims = {"sub": "admin", "role": "admin", "aud": "tradewind", "exp": int(time.time()) - 5}
    expired = jwt.encode(claims, api_secret_for(settings), algorithm="HS512")
    answer = api.get("/api/v2/dags", headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 403
    forged = jwt.encode({**claims, "exp": int(time.time()) + 60}, "x" * 64, algorithm="HS512")
    assert api.get("/api/v2/dags", headers={"Authorization": f"Bearer {forged}"}).status_code == 403


# Every route so far, with the least role that may call it.
ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/v2/dags", None, "viewer"),
    ("GET", "/api/v2/dags/ml_train", None, "viewer"),
    ("GET", "/api/v2/dags/ml_train/details", None, "viewer"),
    ("GET", "/api/v2/dags/ml_train/tasks", None, "viewer"),
    ("GET", "/api/v2/dags/ml_train/tasks/train", None, "viewer"),
    ("GET", "/api/v2/dags/~/dagRuns", None, "viewer"),
    ("PATCH", "/api/v2/dags/ml_train", {"is_paused": True}, "user"),
    ("POST", "/api/v2/dags/ml_train/dagRuns", {"logical_date": None}, "user"),
    ("PATCH", "/api/v2/dags/ml_train/dagRuns/nope", {"note": "n"}, "user"),
    ("DELETE", "/api/v2/dags/ml_train/dagRuns/nope", None, "user"),
    ("GET", "/api/v2/dags/~/dagRuns/~/taskInstances", None, "viewer"),
    ("GET", "/api/v2/dags/ml_train/dagRuns/r/taskInstances/train/logs/1", None, "viewer"),
    ("GET", "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries", None, "viewer"),
    ("GET", "/api/v2/variables", None, "viewer"),
    ("POST", "/api/v2/variables", {"key": "k", "value": "v"}, "op"),
    ("DELETE", "/api/v2/variables/nope", None, "op"),
    ("GET", "/api/v2/connections", None, "viewer"),
    ("POST", "/api/v2/connections", {"connection_id": "c", "conn_type": "http"}, "op"),
    ("DELETE", "/api/v2/connections/nope", None, "op"),
    ("GET", "/api/v2/pools", None, "viewer"),
    ("POST", "/api/v2/pools", {"name": "p", "slots": 1}, "op"),
    ("PATCH", "/api/v2/pools/default_pool", {"slots": 64}, "op"),
    ("DELETE", "/api/v2/pools/nope", None, "op"),
    ("GET", "/api/v2/importErrors", None, "viewer"),
]


@pytest.mark.parametrize(("method", "path", "body", "least"), ROUTES)
def test_each_route_admits_exactly_the_roles_at_or_above_its_least_role(
    api: TestClient, method: str, path: str, body: dict[str, Any] | None, least: str
) -> None:
    for role in ROLES:
        answer = api.request(method, path, json=body, headers=token(api, role))
        allowed = ROLES.index(role) >= ROLES.index(least)
        if allowed:  # a 404 or 409 is fine here: the role got past the door
            assert answer.status_code not in (401, 403), (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert f"needs {least!r}" in answer.json()["detail"]


# --- DAGs and tasks ---------------------------------------------------------------------------


def test_dags_are_listed_filtered_ordered_and_paged(api: TestClient) -> None:
    auth = token(api, "viewer")

    def ids(**params: Any) -> tuple[list[str], int]:
        answer = api.get("/api/v2/dags", params=params, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return [d["dag_id"] for d in body["dags"]], body["total_entries"]

    every = ["Report_C", "etl_daily", "mapped", "ml_train", "report_a", "report_b"]
    assert ids() == (sorted(every), 6)
    assert ids(limit=2, offset=1) == (sorted(every)[1:3], 6)
    assert ids(limit=0) == ([], 6)
    assert ids(limit=1000)[1] == 6  # capped silently, not refused
    assert ids(order_by="-dag_id")[0] == sorted(every, reverse=True)
    assert ids(tags=["etl"])[1] == 4
    assert ids(tags=["etl", "daily"], tags_match_mode="all") == (["etl_daily"], 1)
    assert ids(dag_id_pattern="REPORT") == (["Report_C", "report_a", "report_b"], 3)
    assert ids(dag_id_pattern="ml|daily")[0] == ["etl_daily", "ml_train"]
    assert ids(dag_id_prefix_pattern="report")[0] == ["report_a", "report_b"]
    assert ids(paused=False) == ([], 0)  # new DAGs start paused
    bad_order = api.get("/api/v2/dags", params={"order_by": "colour"}, headers=auth)
    assert bad_order.status_code == 400
    assert "colour" in bad_order.json()["detail"]
    negative = api.get("/api/v2/dags", params={"limit": -1}, headers=auth)
    assert negative.status_code == 422
    assert negative.json()["detail"][0]["loc"] == ["query", "limit"]


def test_a_dag_reads_with_strict_types_and_its_details(api: TestClient) -> None:
    auth = token(api, "viewer")
    dag = api.get("/api/v2/dags/etl_daily", headers=auth).json()
    assert dag["dag_display_name"] == "etl_daily"
    assert dag["is_paused"] is True
    assert isinstance(dag["max_active_tasks"], int)
    assert [t["name"] for t in dag["tags"]] == ["daily", "etl"]
    assert dag["owners"] == ["data-eng"]
    assert dag["timetable_summary"] == "0 0 * * *"
    assert dag["timetable_periodic"] is True
    assert dag["next_dagrun_run_after"] is None  # computed once unpaused
    details = api.get("/api/v2/dags/etl_daily/details", headers=auth).json()
    assert details["catchup"] is False
    assert details["dag_run_timeout"] == "PT1H"
    assert details["concurrency"] == dag["max_active_tasks"]
    assert details["params"]["batch"]["value"] == 10
    assert details["latest_dag_version"]["version_number"] == 1
    assert details["start_date"].startswith("2024-01-01T00:00:00")
    missing = api.get("/api/v2/dags/nope", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "The Dag with ID: `nope` was not found"}


def test_pausing_and_unpausing_a_dag(api: TestClient) -> None:
    auth = token(api, "user")
    answer = api.patch("/api/v2/dags/ml_train", json={"is_paused": False}, headers=auth)
    assert (answer.status_code, answer.json()["is_paused"]) == (200, False)
    masked = api.patch(
        "/api/v2/dags/ml_train",
        params={"update_mask": ["description"]},
        json={"is_paused": True},
        headers=auth,
    )
    assert masked.status_code == 400
    extra = api.patch("/api/v2/dags/ml_train", json={"is_paused": True, "x": 1}, headers=auth)
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["type"] == "extra_forbidden"
    not_bool = api.patch("/api/v2/dags/ml_train", json={"is_paused": "maybe"}, headers=auth)
    assert not_bool.status_code == 422
    assert api.patch("/api/v2/dags/nope", json={"is_paused": True}, headers=auth).status_code == 404


def test_tasks_of_a_dag(api: TestClient) -> None:
    auth = token(api, "viewer")
    tasks = api.get("/api/v2/dags/etl_daily/tasks", headers=auth).json()
    assert tasks["total_entries"] == 2
    extract = tasks["tasks"][0]
    assert extract["task_id"] == "extract"
    assert extract["downstream_task_ids"] == ["load"]
    assert extract["retries"] == 2.0
    assert extract["retry_delay"] == {
        "__type": "TimeDelta",
        "days": 0,
        "seconds": 300,
        "microseconds": 0,
    }
    assert extract["class_ref"]["class_name"] == "BashOperator"
    descending = api.get("/api/v2/dags/etl_daily/tasks?order_by=-task_id", headers=auth).json()
    assert [t["task_id"] for t in descending["tasks"]] == ["load", "extract"]
    assert api.get("/api/v2/dags/etl_daily/tasks/load", headers=auth).json()["task_id"] == "load"
    assert api.get("/api/v2/dags/etl_daily/tasks/nope", headers=auth).status_code == 404
    assert api.get("/api/v2/dags/etl_daily/tasks?order_by=x", headers=auth).status_code == 400


# --- DAG runs ---------------------------------------------------------------------------------


def test_triggering_a_run(api: TestClient) -> None:
    auth = token(api, "user")
    answer = api.post(
        "/api/v2/dags/etl_daily/dagRuns",
        json={"logical_date": "2024-03-01T00:00:00+00:00", "conf": {"batch": 42}, "note": "hi"},
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["state"] == "queued"
    assert run["run_type"] == "manual"
    assert run["triggered_by"] == "rest_api"
    assert run["triggering_user_name"] == "user"
    assert run["conf"] == {"batch": 42}
    assert run["note"] == "hi"
    assert run["logical_date"].startswith("2024-03-01T00:00:00")
    assert run["data_interval_end"] is not None
    assert run["dag_run_id"].startswith("manual__2024-03-01")
    assert run["dag_versions"][0]["version_number"] == 1
    no_date = api.post("/api/v2/dags/ml_train/dagRuns", json={"logical_date": None}, headers=auth)
    assert no_date.status_code == 200
    assert no_date.json()["logical_date"] is None
    assert no_date.json()["data_interval_start"] is None


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"logical_date": None, "conf": {"batch": 1000}}, 400, "batch"),
        ({"logical_date": None, "conf": {"batch": "ten"}}, 400, "batch"),
        ({"logical_date": "2024-03-01T00:00:00"}, 422, "timezone"),
        ({}, 422, "logical_date"),
        ({"logical_date": None, "data_interval_start": "2024-01-01T00:00:00Z"}, 422, "together"),
        ({"logical_date": None, "dag_run_id": "bad id!"}, 400, "not allowed"),
        ({"logical_date": None, "colour": "red"}, 422, "colour"),
    ],
)
def test_a_bad_trigger_is_refused_with_the_reason(
    api: TestClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    answer = api.post("/api/v2/dags/etl_daily/dagRuns", json=body, headers=token(api, "user"))
    assert answer.status_code == status, answer.text
    assert fragment in answer.text


def test_a_duplicate_run_id_is_409_and_an_unknown_dag_404(api: TestClient) -> None:
    auth = token(api, "user")
    body = {"logical_date": None, "dag_run_id": "once"}
    assert api.post("/api/v2/dags/ml_train/dagRuns", json=body, headers=auth).status_code == 200
    assert api.post("/api/v2/dags/ml_train/dagRuns", json=body, headers=auth).status_code == 409
    assert api.post("/api/v2/dags/nope/dagRuns", json=body, headers=auth).status_code == 404


def test_runs_are_read_listed_marked_and_deleted(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    auth = token(api, "user")
    for run_id in ("r1", "r2", "r3"):
        body = {"logical_date": None, "dag_run_id": run_id}
        assert (
            api.post("/api/v2/dags/etl_daily/dagRuns", json=body, headers=auth).status_code == 200
        )
    one = api.get("/api/v2/dags/etl_daily/dagRuns/r1", headers=auth)
    assert (one.status_code, one.json()["dag_run_id"]) == (200, "r1")
    missing = api.get("/api/v2/dags/etl_daily/dagRuns/nope", headers=auth)
    assert missing.json() == {
        "detail": "The DagRun with dag_id: `etl_daily` and run_id: `nope` was not found"
    }
    listed = api.get(
        "/api/v2/dags/~/dagRuns", params={"order_by": "-run_id", "limit": 2}, headers=auth
    ).json()
    assert [r["dag_run_id"] for r in listed["dag_runs"]] == ["r3", "r2"]
    assert listed["total_entries"] == 3
    bad_state = api.get("/api/v2/dags/~/dagRuns", params={"state": "sleeping"}, headers=auth)
    assert bad_state.status_code == 422

    with session_scope(session_factory) as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == "r2"))
        assert run is not None
        run.state = "running"
        session.execute(
            TaskInstance.__table__.update()
            .where(TaskInstance.run_id == "r2", TaskInstance.task_id == "extract")
            .values(state="running")
        )
    marked = api.patch(
        "/api/v2/dags/etl_daily/dagRuns/r1",
        json={"state": "failed", "note": "bad data"},
        headers=auth,
    )
    assert (marked.status_code, marked.json()["state"], marked.json()["note"]) == (
        200,
        "failed",
        "bad data",
    )
    succeeded = api.patch(
        "/api/v2/dags/etl_daily/dagRuns/r2", json={"state": "success"}, headers=auth
    )
    assert succeeded.json()["state"] == "success"
    with session_factory() as session:
        states = dict(
            session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(TaskInstance.run_id == "r2")
            ).all()
        )
        failed_run = dict(
            session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(TaskInstance.run_id == "r1")
            ).all()
        )
    assert states == {"extract": "success", "load": "success"}
    assert failed_run == {"extract": "skipped", "load": "skipped"}
    running_state = api.patch(
        "/api/v2/dags/etl_daily/dagRuns/r3", json={"state": "running"}, headers=auth
    )
    assert running_state.status_code == 422

    with session_scope(session_factory) as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == "r3"))
        assert run is not None
        run.state = "running"
    busy = api.delete("/api/v2/dags/etl_daily/dagRuns/r3", headers=auth)
    assert busy.status_code == 409
    gone = api.delete("/api/v2/dags/etl_daily/dagRuns/r1", headers=auth)
    assert (gone.status_code, gone.content) == (204, b"")
    assert api.get("/api/v2/dags/etl_daily/dagRuns/r1", headers=auth).status_code == 404
    with session_factory() as session:
        leftovers = session.scalars(select(TaskInstance).where(TaskInstance.run_id == "r1")).all()
    assert leftovers == []


def test_the_openapi_document_and_the_docs_are_served(api: TestClient) -> None:
    spec = api.get("/api/v2/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/api/v2/dags/{dag_id}/dagRuns" in paths
    assert "/auth/token" in paths
    assert api.get("/docs").status_code == 200


# --- task instances, logs, XCom ----------------------------------------------------------------


@pytest.fixture
def ran(api: TestClient, settings: Settings, session_factory: sessionmaker[Session]) -> str:
    """The run id of a finished run of `mapped` (run in this process, as `dags test`)."""
    from scheduler.dag_test import run_dag_test

    result = run_dag_test(session_factory, settings, "mapped", echo=None)
    assert result.state == "success"
    return result.run_id


def test_task_instances_of_a_run_with_strict_fields(api: TestClient, ran: str) -> None:
    auth = token(api, "viewer")
    listed = api.get(f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances", headers=auth)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total_entries"] == 4
    by_key = {(t["task_id"], t["map_index"]): t for t in body["task_instances"]}
    assert set(by_key) == {("numbers", -1), ("double", 0), ("double", 1), ("double", 2)}
    one = by_key[("double", 1)]
    assert one["state"] == "success"
    assert isinstance(one["try_number"], int)
    assert one["try_number"] == 1
    assert isinstance(one["pool_slots"], int)
    assert one["executor_config"] == "{}"
    assert one["operator_name"] == "@task"
    assert one["dag_version"]["version_number"] == 1
    import uuid

    uuid.UUID(one["id"])
    everywhere = api.get("/api/v2/dags/~/dagRuns/~/taskInstances?state=success", headers=auth)
    assert everywhere.json()["total_entries"] == 4
    paged = api.get(
        f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances",
        params={"task_id": "double", "order_by": "-map_index", "limit": 2},
        headers=auth,
    ).json()
    assert [t["map_index"] for t in paged["task_instances"]] == [2, 1]
    assert paged["total_entries"] == 3
    bad = api.get(f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances?state=asleep", headers=auth)
    assert bad.status_code == 400
    single = api.get(f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances/numbers", headers=auth)
    assert single.json()["task_id"] == "numbers"
    mapped = api.get(f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances/double/2", headers=auth)
    assert mapped.json()["map_index"] == 2
    missing = api.get(f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances/nope", headers=auth)
    assert missing.status_code == 404
    tries = api.get(f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances/numbers/tries", headers=auth)
    assert [t["try_number"] for t in tries.json()["task_instances"]] == [1]


def test_the_log_of_a_try(api: TestClient, ran: str) -> None:
    auth = token(api, "viewer")
    base = f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances"
    log = api.get(f"{base}/double/logs/1", params={"map_index": 1}, headers=auth)
    assert log.status_code == 200, log.text
    body = log.json()
    assert any("doubling 2" in line for line in body["content"])
    assert all(isinstance(line, str) for line in body["content"])
    assert body["continuation_token"] is None  # the try has ended: this is all of it
    assert api.get(f"{base}/numbers/logs/2", headers=auth).json() == {
        "detail": "TaskInstance not found"
    }
    assert api.get(f"{base}/numbers/logs/0", headers=auth).status_code == 404
    forged = api.get(f"{base}/numbers/logs/1", params={"token": "abc"}, headers=auth)
    assert forged.status_code == 400


def test_xcom_entries_and_values(api: TestClient, ran: str) -> None:
    auth = token(api, "viewer")
    base = f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances"
    entries = api.get(f"{base}/double/xcomEntries", headers=auth).json()
    assert entries["total_entries"] == 3
    assert {e["map_index"] for e in entries["xcom_entries"]} == {0, 1, 2}
    assert "value" not in entries["xcom_entries"][0]
    any_task = api.get("/api/v2/dags/mapped/dagRuns/~/taskInstances/~/xcomEntries", headers=auth)
    assert any_task.json()["total_entries"] == 4
    value = api.get(
        f"{base}/double/xcomEntries/return_value", params={"map_index": 1}, headers=auth
    ).json()
    assert value["value"] == {"n": 2, "twice": 4}
    assert value["run_id"] == ran
    text = api.get(
        f"{base}/double/xcomEntries/return_value",
        params={"map_index": 1, "stringify": True},
        headers=auth,
    ).json()
    assert text["value"] == "{'n': 2, 'twice': 4}"
    missing = api.get(f"{base}/double/xcomEntries/nope", headers=auth)
    assert missing.json() == {"detail": "XCom entry with key: `nope` not found"}


# --- variables, connections, pools, import errors ---------------------------------------------


def test_variables_round_trip_and_secrets_are_masked(api: TestClient) -> None:
    op, viewer = token(api, "op"), token(api, "viewer")
    created = api.post(
        "/api/v2/variables",
        json={"key": "threshold", "value": {"a": [1, 2]}, "description": "d"},
        headers=op,
    )
    assert created.status_code == 201, created.text
    assert created.json()["value"] == '{"a": [1, 2]}'
    again = api.post("/api/v2/variables", json={"key": "threshold", "value": 1}, headers=op)
    assert again.status_code == 409
    assert api.post("/api/v2/variables", json={"key": "x"}, headers=op).status_code == 422
    secret = api.post("/api/v2/variables", json={"key": "api_token", "value": "s3cr3t"}, headers=op)
    assert (secret.json()["value"], secret.json()["is_encrypted"]) == ("***", True)
    assert api.get("/api/v2/variables/api_token", headers=viewer).json()["value"] == "***"
    assert "s3cr3t" not in api.get("/api/v2/variables", headers=viewer).text
    patched = api.patch(
        "/api/v2/variables/threshold", json={"key": "threshold", "value": "7"}, headers=op
    )
    assert (patched.json()["value"], patched.json()["description"]) == ("7", "d")
    mismatch = api.patch(
        "/api/v2/variables/threshold", json={"key": "other", "value": 1}, headers=op
    )
    assert mismatch.status_code == 400
    listed = api.get("/api/v2/variables?order_by=key", headers=viewer).json()
    assert [v["key"] for v in listed["variables"]] == ["api_token", "threshold"]
    assert (
        api.post(
            "/api/v2/variables", json={"key": "k", "value": 1}, headers=token(api, "user")
        ).status_code
        == 403
    )
    deleted = api.delete("/api/v2/variables/threshold", headers=op)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api.get("/api/v2/variables/threshold", headers=viewer).status_code == 404


def test_connections_never_return_secrets_in_clear(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from tradewind.models import ConnectionModel

    op = token(api, "op")
    body = {
        "connection_id": "warehouse",
        "conn_type": "postgres",
        "host": "db.internal",
        "schema": "analytics",
        "login": "etl",
        "password": "hunter2",
        "port": 5432,
        "extra": '{"sslmode": "require", "api_key": "k-123"}',
    }
    created = api.post("/api/v2/connections", json=body, headers=op)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["password"] == "***"
    assert answer["schema"] == "analytics"
    assert answer["extra"] == '{"sslmode": "require", "api_key": "***"}'
    assert api.post("/api/v2/connections", json=body, headers=op).status_code == 409
    with session_factory() as session:
        row = session.scalar(select(ConnectionModel).where(ConnectionModel.conn_id == "warehouse"))
        assert row is not None
        assert row.password != "hunter2"  # encrypted at rest
        assert "k-123" not in (row.extra or "")
    patched = api.patch(
        "/api/v2/connections/warehouse",
        params={"update_mask": ["host"]},
        json={**body, "host": "db2.internal", "password": "changed"},
        headers=op,
    )
    assert patched.json()["host"] == "db2.internal"
    from tradewind.settings import get_settings
    from tradewind.variables import get_connection_fields

    fields = get_connection_fields(session_factory, get_settings(), "warehouse")
    assert fields is not None
    assert fields["password"] == "hunter2"  # not in the mask: unchanged
    bad_extra = api.post(
        "/api/v2/connections",
        json={"connection_id": "c2", "conn_type": "http", "extra": "not json"},
        headers=op,
    )
    assert bad_extra.status_code == 400
    listed = api.get("/api/v2/connections", headers=token(api, "viewer")).json()
    assert listed["total_entries"] == 1
    assert api.delete("/api/v2/connections/warehouse", headers=op).status_code == 204
    assert api.get("/api/v2/connections/warehouse", headers=op).status_code == 404


def test_pools_with_their_slot_usage(api: TestClient) -> None:
    op, viewer = token(api, "op"), token(api, "viewer")
    pools = api.get("/api/v2/pools", headers=viewer).json()
    default = pools["pools"][0]
    assert (default["name"], default["slots"], default["open_slots"]) == ("default_pool", 128, 128)
    created = api.post("/api/v2/pools", json={"name": "gpu", "slots": 2}, headers=op)
    assert created.status_code == 201
    assert created.json()["open_slots"] == 2
    assert (
        api.post("/api/v2/pools", json={"name": "gpu", "slots": 2}, headers=op).status_code == 409
    )
    assert (
        api.post("/api/v2/pools", json={"name": "x", "slots": 1.5}, headers=op).status_code == 422
    )
    partial = api.patch("/api/v2/pools/gpu", json={"slots": 4}, headers=op)
    assert partial.json()["slots"] == 4
    assert api.patch("/api/v2/pools/gpu", json={"pool": "cpu"}, headers=op).status_code == 400
    assert api.delete("/api/v2/pools/default_pool", headers=op).status_code == 400
    assert api.delete("/api/v2/pools/gpu", headers=op).status_code == 204
    assert api.get("/api/v2/pools/gpu", headers=viewer).status_code == 404


def test_import_errors_are_listed_with_their_file(
    api: TestClient, dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from scheduler.dag_processing.processor import DagFileProcessor

    broken = "from tradewind import DAG\nimport nonexistent_module_xyz\n"
    (dags_folder / "broken.py").write_text(broken)
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    viewer = token(api, "viewer")
    listed = api.get("/api/v2/importErrors", headers=viewer).json()
    assert listed["total_entries"] == 1
    error = listed["import_errors"][0]
    assert error["filename"].endswith("broken.py")
    assert "nonexistent_module_xyz" in error["stack_trace"]
    one = api.get(f"/api/v2/importErrors/{error['import_error_id']}", headers=viewer)
    assert one.json() == error
    assert api.get("/api/v2/importErrors/999999", headers=viewer).status_code == 404


# --- marking and clearing ---------------------------------------------------------------------


def test_marking_a_task_instance_and_its_downstream(
    api: TestClient, ran: str, session_factory: sessionmaker[Session]
) -> None:
    auth = token(api, "user")
    base = f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances"
    marked = api.patch(f"{base}/numbers", json={"new_state": "failed"}, headers=auth)
    assert marked.status_code == 200, marked.text
    assert [t["state"] for t in marked.json()["task_instances"]] == ["failed"]
    same = api.patch(f"{base}/numbers", json={"new_state": "failed"}, headers=auth)
    assert (same.status_code, same.json()) == (
        409,
        {"detail": "Task id numbers is already in failed state"},
    )
    assert (
        api.patch(f"{base}/numbers", json={"new_state": "running"}, headers=auth).status_code == 422
    )
    assert api.patch(f"{base}/numbers", json={"new_state": None}, headers=auth).status_code == 422
    cascade = api.patch(
        f"{base}/numbers",
        json={"new_state": "skipped", "include_downstream": True},
        headers=auth,
    )
    assert {
        (t["task_id"], t["map_index"], t["state"]) for t in cascade.json()["task_instances"]
    } == {
        ("numbers", -1, "skipped"),
        ("double", 0, "skipped"),
        ("double", 1, "skipped"),
        ("double", 2, "skipped"),
    }
    noted = api.patch(f"{base}/numbers", json={"note": "looked at it"}, headers=auth)
    assert noted.json()["task_instances"][0]["note"] == "looked at it"
    with session_factory() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == ran))
        assert run is not None
        assert run.state == "running"  # to be decided again by the scheduler


def test_clearing_task_instances_archives_their_try_and_queues_the_run(
    api: TestClient, ran: str
) -> None:
    auth = token(api, "user")
    base = f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances"
    api.patch(f"{base}/double", params={"map_index": 1}, json={"new_state": "failed"}, headers=auth)
    dry = api.post("/api/v2/dags/mapped/clearTaskInstances", json={}, headers=auth)
    assert dry.status_code == 200, dry.text
    assert [(t["task_id"], t["map_index"]) for t in dry.json()["task_instances"]] == [("double", 1)]
    assert api.get(f"{base}/double/1", headers=auth).json()["state"] == "failed"  # dry run
    done = api.post(
        "/api/v2/dags/mapped/clearTaskInstances",
        json={"dry_run": False, "dag_run_id": ran},
        headers=auth,
    )
    assert done.json()["total_entries"] == 1
    cleared = api.get(f"{base}/double/1", headers=auth).json()
    assert (cleared["state"], cleared["try_number"]) == (None, 1)
    tries = api.get(f"{base}/double/tries", params={"map_index": 1}, headers=auth).json()
    assert [(t["try_number"], t["state"]) for t in tries["task_instances"]] == [
        (1, "failed"),
        (1, None),
    ]
    assert api.get(f"/api/v2/dags/mapped/dagRuns/{ran}", headers=auth).json()["state"] == "queued"
    named = api.post(
        "/api/v2/dags/mapped/clearTaskInstances",
        json={"task_ids": ["numbers"], "only_failed": False, "include_downstream": True},
        headers=auth,
    ).json()
    assert named["total_entries"] == 4


def test_clearing_a_whole_run(api: TestClient, ran: str) -> None:
    auth = token(api, "user")
    path = f"/api/v2/dags/mapped/dagRuns/{ran}/clear"
    dry = api.post(path, json={}, headers=auth)
    assert dry.status_code == 200
    assert dry.json()["total_entries"] == 4
    assert "dag_run_id" not in dry.json()
    done = api.post(path, json={"dry_run": False}, headers=auth)
    assert (done.json()["dag_run_id"], done.json()["state"]) == (ran, "queued")
    listed = api.get(f"/api/v2/dags/mapped/dagRuns/{ran}/taskInstances", headers=auth).json()
    assert {t["state"] for t in listed["task_instances"]} == {None}
