"""`/api/v2/assets` in process, on SQLite and Postgres: assets with their producers and
consumers, events (listed, filtered, created from outside), and the events behind an
asset-triggered run."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from scheduler.asset_runs import create_asset_triggered_runs
from scheduler.dag_processing.processor import DagFileProcessor
from tests.integration.test_api import api_client, token
from tests.integration.test_assets import BOTH, CONSUMER, PRODUCERS
from tradewind.dags import set_paused
from tradewind.db import session_scope
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def api(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    (dags_folder / "producers.py").write_text(textwrap.dedent(PRODUCERS))
    (dags_folder / "train.py").write_text(textwrap.dedent(CONSUMER.format(schedule=BOTH)))
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    yield from api_client(dags_folder, settings, session_factory)


def test_assets_list_their_producers_and_consumers(api: TestClient) -> None:
    viewer = token(api, "viewer")
    listed = api.get("/api/v2/assets", headers=viewer)
    assert listed.status_code == 200, listed.text
    by_uri = {a["uri"]: a for a in listed.json()["assets"]}
    assert listed.json()["total_entries"] == 2
    labels = by_uri["s3://lake/labels"]
    assert [d["dag_id"] for d in labels["scheduled_dags"]] == ["train"]
    assert [(t["dag_id"], t["task_id"]) for t in labels["producing_tasks"]] == [
        ("make_labels", "label")
    ]
    assert labels["last_asset_event"] is None
    assert by_uri["s3://lake/features/{{ ds }}"]["name"] == "features"
    one = api.get(f"/api/v2/assets/{labels['id']}", headers=viewer)
    assert one.json()["uri"] == "s3://lake/labels"
    only = api.get("/api/v2/assets", params={"dag_ids": "make_labels"}, headers=viewer)
    assert [a["uri"] for a in only.json()["assets"]] == ["s3://lake/labels"]
    pattern = api.get("/api/v2/assets", params={"uri_pattern": "features"}, headers=viewer)
    assert pattern.json()["total_entries"] == 1
    assert api.get("/api/v2/assets/999", headers=viewer).status_code == 404


def test_an_event_from_outside_triggers_the_consumer(
    api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_scope(session_factory) as session:
        set_paused(session, ["train"], paused=False)
    viewer, user = token(api, "viewer"), token(api, "user")
    ids = {a["uri"]: a["id"] for a in api.get("/api/v2/assets", headers=viewer).json()["assets"]}
    refused = api.post(
        "/api/v2/assets/events", json={"asset_id": ids["s3://lake/labels"]}, headers=viewer
    )
    assert refused.status_code == 403
    for uri, asset_id in ids.items():
        body = {"asset_id": asset_id, "extra": {"landed_by": "ingest-service"}}
        created = api.post("/api/v2/assets/events", json=body, headers=user)
        assert created.status_code == 200, created.text
        assert created.json()["uri"] == uri
        assert created.json()["source_dag_id"] is None
        assert created.json()["extra"] == {"landed_by": "ingest-service"}
    with session_scope(session_factory) as session:
        (run,) = create_asset_triggered_runs(session, utcnow())
        run_id = run.run_id
    upstream = api.get(f"/api/v2/dags/train/dagRuns/{run_id}/upstreamAssetEvents", headers=viewer)
    assert upstream.status_code == 200
    assert sorted(e["uri"] for e in upstream.json()["asset_events"]) == sorted(ids)
    events = api.get(
        "/api/v2/assets/events", params={"asset_id": ids["s3://lake/labels"]}, headers=viewer
    ).json()
    assert events["total_entries"] == 1
    assert [r["run_id"] for r in events["asset_events"][0]["created_dagruns"]] == [run_id]
    asset = api.get(f"/api/v2/assets/{ids['s3://lake/labels']}", headers=viewer).json()
    assert asset["last_asset_event"]["id"] == events["asset_events"][0]["id"]


def test_bad_event_requests(api: TestClient) -> None:
    user = token(api, "user")
    missing = api.post("/api/v2/assets/events", json={"asset_id": 999}, headers=user)
    assert missing.status_code == 404
    assert api.post("/api/v2/assets/events", json={"asset_id": 0}, headers=user).status_code == 422
    assert api.post("/api/v2/assets/events", json={}, headers=user).status_code == 422
    wrong = api.get("/api/v2/assets", params={"order_by": "color"}, headers=user)
    assert wrong.status_code == 400
