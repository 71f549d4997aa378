"""`GET .../dagRuns/{run}/wait` streams a run's state as NDJSON until it finishes, on
SQLite and Postgres: with a real scheduler running the run, the last line carries the
results asked for; the errors come before the stream starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.daemons import daemon_env, running
from tests.integration.test_api import api_client, token
from tradewind.db import session_scope
from tradewind.models import DagRun
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

MAPPED = "/api/v2/dags/mapped/dagRuns"


@pytest.fixture
def api(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    yield from api_client(dags_folder, settings, session_factory)


def stream(api: TestClient, url: str, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    with api.stream("GET", url, params=params, headers=auth) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in answer.iter_lines() if line]


def test_a_run_is_followed_until_it_finishes_with_its_results(
    api: TestClient, settings: Settings, tmp_path: Path
) -> None:
    auth = token(api, "user")
    assert api.patch("/api/v2/dags/mapped", json={"is_paused": False}, headers=auth).is_success
    run = api.post(MAPPED, json={"logical_date": None}, headers=auth).json()
    url = f"{MAPPED}/{run['dag_run_id']}/wait"
    with running(["scheduler"], daemon_env(settings), tmp_path / "scheduler.log"):
        lines = stream(api, url, auth, interval=0.1, result=["numbers", "double"])
    assert lines[0]["state"] in ("queued", "running")
    assert all(set(line) == {"state"} for line in lines[:-1])
    assert all(line["state"] in ("queued", "running") for line in lines[:-1])
    assert lines[-1] == {
        "state": "success",
        "results": {
            "numbers": [1, 2, 3],  # one task: its value
            "double": [{"n": n, "twice": 2 * n} for n in (1, 2, 3)],  # mapped: the list
        },
    }
    # Once finished, one line at once; without `result`, no results.
    assert stream(api, url, auth, interval=60) == [{"state": "success"}]
    # A task that returned nothing is left out.
    assert stream(api, url, auth, interval=60, result=["absent"]) == [
        {"state": "success", "results": {}}
    ]


def test_a_failed_run_ends_the_stream(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    auth = token(api, "viewer")
    run = api.post(MAPPED, json={"logical_date": None}, headers=token(api, "user")).json()
    with session_scope(session_factory) as session:
        session.execute(update(DagRun).values(state="failed"))
    lines = stream(api, f"{MAPPED}/{run['dag_run_id']}/wait", auth, interval=0.05)
    assert lines == [{"state": "failed"}]


def test_errors_come_before_the_stream(api: TestClient) -> None:
    auth = token(api, "viewer")
    run = api.post(MAPPED, json={"logical_date": None}, headers=token(api, "user")).json()
    url = f"{MAPPED}/{run['dag_run_id']}/wait"
    missing = api.get(f"{MAPPED}/nope/wait", params={"interval": 1}, headers=auth)
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]
    for params in ({}, {"interval": 0}, {"interval": "soon"}):
        refused = api.get(url, params=params, headers=auth)
        assert refused.status_code == 422, params
        assert refused.json()["detail"][0]["loc"] == ["query", "interval"]
    assert api.get(url, params={"interval": 1}).status_code == 401


def test_a_run_deleted_while_waited_on_ends_the_stream(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    auth = token(api, "admin")
    run = api.post(MAPPED, json={"logical_date": None}, headers=auth).json()
    url = f"{MAPPED}/{run['dag_run_id']}/wait"
    with api.stream("GET", url, params={"interval": 0.05}, headers=auth) as answer:
        lines = answer.iter_lines()
        assert json.loads(next(lines)) == {"state": "queued"}
        with session_scope(session_factory) as session:
            session.query(DagRun).delete()
        rest = [line for line in lines if line]
    assert all(json.loads(line) == {"state": "queued"} for line in rest)
