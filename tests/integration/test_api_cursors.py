"""Cursor pagination of the run and task-instance lists (``?cursor=``), on SQLite and
Postgres: every order walks the whole list forwards and backwards without a row twice
or missing, NULLs included; rows added mid-walk do not shift later pages; a bad cursor
is a 400."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.test_api import api_client, token
from tradewind.db import session_scope
from tradewind.models import DagRun
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

RUNS = "/api/v2/dags/etl_daily/dagRuns"
START = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def api(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    yield from api_client(dags_folder, settings, session_factory)


def seven_runs(api: TestClient, session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """Seven runs of etl_daily; three started (two at the same moment), four not (NULL)."""
    auth = token(api)
    for day in range(7):
        body = {"dag_run_id": f"r{day}", "logical_date": (START + timedelta(days=day)).isoformat()}
        assert api.post(RUNS, json=body, headers=auth).status_code == 200
    with session_scope(session_factory) as session:
        started = {"r5": START, "r1": START, "r3": START - timedelta(hours=1)}
        for run in session.scalars(select(DagRun).where(DagRun.run_id.in_(started))):
            run.start_date = started[run.run_id]
        ids = {row.run_id: row.id for row in session.execute(select(DagRun.run_id, DagRun.id))}
    return {"auth": auth, "ids": ids, "started": started}


def walk(api: TestClient, url: str, auth: dict[str, str], **params: Any) -> list[list[str]]:
    """Every page from the first, following next_cursor: the run ids of each."""
    pages, cursor = [], ""
    while cursor is not None:
        answer = api.get(url, params={**params, "cursor": cursor}, headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total_entries_limit"] == 50000
        if not pages:
            assert body["previous_cursor"] is None
        pages.append([run["dag_run_id"] for run in body["dag_runs"]])
        last_body, cursor = body, body["next_cursor"]
    # And back again from the last page.
    back, cursor = [pages[-1]], last_body["previous_cursor"]
    while cursor is not None:
        body = api.get(url, params={**params, "cursor": cursor}, headers=auth).json()
        back.insert(0, [run["dag_run_id"] for run in body["dag_runs"]])
        cursor = body["previous_cursor"]
    assert back == pages
    return pages


@pytest.mark.parametrize(
    "order_by", [None, "-id", "start_date", "-start_date", "state", "-logical_date"]
)
def test_every_order_walks_the_whole_list_both_ways(
    api: TestClient, session_factory: sessionmaker[Session], order_by: str | None
) -> None:
    seen = seven_runs(api, session_factory)
    ids, started = seen["ids"], seen["started"]
    params = {"limit": 3} if order_by is None else {"limit": 3, "order_by": order_by}
    pages = walk(api, RUNS, seen["auth"], **params)
    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [run_id for page in pages for run_id in page]

    def by_start(run_id: str) -> tuple[bool, datetime, int]:
        return (run_id not in started, started.get(run_id, START), ids[run_id])

    expected = {
        None: sorted(ids, key=ids.__getitem__),
        "-id": sorted(ids, key=ids.__getitem__, reverse=True),
        "start_date": sorted(ids, key=by_start),  # NULLs last going up
        # NULLs first going down; the tiebreak (id) always goes up.
        "-start_date": sorted(
            ids,
            key=lambda r: (r in started, -started.get(r, START).timestamp(), ids[r]),
        ),
        "state": sorted(ids, key=ids.__getitem__),  # all queued: the tiebreak decides
        "-logical_date": [f"r{day}" for day in reversed(range(7))],
    }[order_by]
    assert listed == expected


def test_rows_added_during_a_walk_do_not_shift_its_pages(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    seen = seven_runs(api, session_factory)
    first = api.get(RUNS, params={"limit": 3, "cursor": ""}, headers=seen["auth"]).json()
    assert [r["dag_run_id"] for r in first["dag_runs"]] == ["r0", "r1", "r2"]
    # A new run sorts at the end (highest id); one before the cursor is deleted.
    body = {"dag_run_id": "late", "logical_date": "2025-01-01T00:00:00+00:00"}
    assert api.post(RUNS, json=body, headers=seen["auth"]).status_code == 200
    assert api.delete(f"{RUNS}/r1", headers=seen["auth"]).status_code == 204
    second = api.get(
        RUNS, params={"limit": 3, "cursor": first["next_cursor"]}, headers=seen["auth"]
    ).json()
    assert [r["dag_run_id"] for r in second["dag_runs"]] == ["r3", "r4", "r5"]
    assert second["total_entries"] == 7


def test_task_instances_page_by_cursor(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    seen = seven_runs(api, session_factory)
    url = "/api/v2/dags/~/dagRuns/~/taskInstances"
    listed, cursor = [], ""
    while cursor is not None:
        answer = api.get(
            url,
            params={"limit": 4, "cursor": cursor, "order_by": "-logical_date"},
            headers=seen["auth"],
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total_entries"] == 14
        listed += [(ti["dag_run_id"], ti["task_id"]) for ti in body["task_instances"]]
        cursor = body["next_cursor"]
    assert len(listed) == len(set(listed)) == 14
    assert [run for run, _task in listed] == [f"r{d}" for d in reversed(range(7)) for _ in "ab"]


def test_offset_mode_has_no_cursors(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    seen = seven_runs(api, session_factory)
    body = api.get(RUNS, params={"limit": 3}, headers=seen["auth"]).json()
    assert body["total_entries"] == 7
    assert body["next_cursor"] is None
    assert body["previous_cursor"] is None
    assert body["total_entries_limit"] is None


def forged(at: list[Any]) -> str:
    """A cursor of the default order (``id``, then the tiebreak) with made-up values."""
    text = json.dumps({"order": ["id", "(tiebreak)"], "back": False, "at": at})
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "bm90IGpzb24",  # not JSON
        "W10",  # JSON, not a cursor
        forged([{"v": "one"}, {"v": 1}]),  # a string for an integer column
        forged([{"v": 2**40}, {"v": 1}]),  # beyond the column's range
        forged([{"v": 1}]),  # too few values
    ],
)
def test_a_cursor_that_is_not_ours_is_a_400(
    api: TestClient, session_factory: sessionmaker[Session], cursor: str
) -> None:
    seen = seven_runs(api, session_factory)
    answer = api.get(RUNS, params={"cursor": cursor}, headers=seen["auth"])
    assert answer.status_code == 400
    assert "cursor" in answer.json()["detail"]


def test_a_cursor_of_another_order_is_a_400(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    seen = seven_runs(api, session_factory)
    first = api.get(RUNS, params={"limit": 2, "cursor": ""}, headers=seen["auth"]).json()
    answer = api.get(
        RUNS,
        params={"limit": 2, "cursor": first["next_cursor"], "order_by": "-id"},
        headers=seen["auth"],
    )
    assert answer.status_code == 400
    assert "order_by" in answer.json()["detail"]
