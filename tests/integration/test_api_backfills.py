"""`/api/v2/backfills` in process, on SQLite and Postgres: create (and dry-run), list,
get, pause, unpause, cancel; roles and error answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from scheduler.backfills import advance_backfills
from tests.integration.test_api import api_client, token
from tradewind.dags import set_paused
from tradewind.db import session_scope
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def api(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    yield from api_client(dags_folder, settings, session_factory)


BODY = {
    "dag_id": "etl_daily",
    "from_date": "2026-01-01T00:00:00Z",
    "to_date": "2026-01-05T00:00:00Z",
    "max_active_runs": 2,
    "dag_run_conf": {"batch": 20},
}


def create(api: TestClient, **changes: Any) -> Any:
    return api.post("/api/v2/backfills", json={**BODY, **changes}, headers=token(api, "user"))


def test_a_backfill_is_created_read_listed_and_its_progress_shown(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    created = create(api)
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["dag_id"] == "etl_daily"
    assert body["dag_run_conf"] == {"batch": 20}
    assert (body["is_paused"], body["completed_at"], body["max_active_runs"]) == (False, None, 2)
    assert body["reprocess_behavior"] == "none"
    assert body["progress"]["total"] == 5
    assert body["progress"]["pending"] == 5

    with session_scope(session_factory) as session:
        set_paused(session, ["etl_daily"], paused=False)
        assert len(advance_backfills(session, utcnow())) == 2
    viewer = token(api, "viewer")
    got = api.get(f"/api/v2/backfills/{body['id']}", headers=viewer).json()
    assert got["progress"] | {} == {**got["progress"], "queued": 2, "pending": 3}
    listed = api.get("/api/v2/backfills", params={"dag_id": "etl_daily"}, headers=viewer)
    assert listed.json()["total_entries"] == 1
    assert api.get("/api/v2/backfills", params={"active": False}, headers=viewer).json() == {
        "backfills": [],
        "total_entries": 0,
    }
    runs = api.get("/api/v2/dags/etl_daily/dagRuns", headers=viewer).json()["dag_runs"]
    assert {(r["run_type"], r["triggered_by"]) for r in runs} == {("backfill", "backfill")}


def test_pause_unpause_and_cancel(api: TestClient) -> None:
    backfill_id = create(api).json()["id"]
    user = token(api, "user")
    paused = api.put(f"/api/v2/backfills/{backfill_id}/pause", headers=user)
    assert (paused.status_code, paused.json()["is_paused"]) == (200, True)
    unpaused = api.put(f"/api/v2/backfills/{backfill_id}/unpause", headers=user)
    assert unpaused.json()["is_paused"] is False
    cancelled = api.put(f"/api/v2/backfills/{backfill_id}/cancel", headers=user)
    assert cancelled.json()["completed_at"] is not None
    assert cancelled.json()["progress"]["skipped"] == 5
    again = api.put(f"/api/v2/backfills/{backfill_id}/pause", headers=user)
    assert again.status_code == 409
    assert "has completed" in again.json()["detail"]


def test_a_dry_run_lists_the_dates_and_creates_nothing(api: TestClient) -> None:
    user = token(api, "user")
    answer = api.post(
        "/api/v2/backfills/dry_run", json={**BODY, "run_backwards": True}, headers=user
    )
    assert answer.status_code == 200, answer.text
    dates = [b["logical_date"] for b in answer.json()["backfills"]]
    assert dates[0].startswith("2026-01-05")
    assert dates[-1].startswith("2026-01-01")
    assert answer.json()["total_entries"] == 5
    listed = api.get("/api/v2/backfills", headers=user).json()
    assert listed["total_entries"] == 0


@pytest.mark.parametrize(
    ("changes", "code", "detail"),
    [
        ({"dag_id": "nope"}, 404, "DAG 'nope' not found"),
        ({"dag_id": "ml_train"}, 400, "needs a time-based schedule"),
        ({"from_date": "2026-02-01T00:00:00Z"}, 400, "is after to_date"),
        ({"dag_run_conf": {"batch": 1000}}, 400, "dag_run_conf does not fit"),
        ({"from_date": "2026-01-01T00:00:00"}, 422, None),  # no time zone
        ({"reprocess_behavior": "all"}, 422, None),
        ({"max_active_runs": 0}, 422, None),
        ({"unknown": 1}, 422, None),
    ],
)
def test_bad_requests_are_refused_with_the_reason(
    api: TestClient, changes: dict[str, Any], code: int, detail: str | None
) -> None:
    answer = create(api, **changes)
    assert answer.status_code == code, answer.text
    if detail is not None:
        assert detail in answer.json()["detail"]


def test_a_second_backfill_of_the_same_dag_is_a_conflict(api: TestClient) -> None:
    first = create(api).json()["id"]
    second = create(api)
    assert second.status_code == 409
    assert f"backfill {first}" in second.json()["detail"]


def test_roles_and_unknown_ids(api: TestClient) -> None:
    assert api.get("/api/v2/backfills").status_code == 401
    viewer = token(api, "viewer")
    refused = api.post("/api/v2/backfills", json=BODY, headers=viewer)
    assert refused.status_code == 403
    assert api.get("/api/v2/backfills/999", headers=viewer).status_code == 404
    assert api.put("/api/v2/backfills/999/cancel", headers=token(api, "user")).status_code == 404
    assert api.get("/api/v2/backfills/0", headers=viewer).status_code == 422
