"""Data-aware scheduling on SQLite and Postgres: producers record asset events, a DAG
scheduled on two assets runs once after both were updated (through a real scheduler),
the run knows its events, conditions with & and |, and the references a DAG file
declares."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.asset_runs import create_asset_triggered_runs
from scheduler.dag_processing.processor import DagFileProcessor
from tests.integration.daemons import daemon_env, running, wait_for
from tests.integration.test_scheduler import parse_and_unpause
from tests.integration.test_sensors import trigger
from tradewind.asset_events import ensure_asset, record_event
from tradewind.db import session_scope
from tradewind.models import (
    AssetEvent,
    AssetModel,
    DagRun,
    DagRunAssetEvent,
    DagScheduleAssetReference,
    TaskOutletAssetReference,
)
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

PRODUCERS = """
from tradewind import DAG, Asset, task

FEATURES = Asset("s3://lake/features/{{ ds }}", name="features")
LABELS = Asset("s3://lake/labels")

with DAG("make_features"):
    @task(outlets=[FEATURES])
    def build(outlet_events=None):
        outlet_events[FEATURES].extra["rows"] = 1200

    build()

with DAG("make_labels"):
    @task(outlets=[LABELS])
    def label():
        pass

    label()
"""

CONSUMER = """
from tradewind import DAG, Asset, task

with DAG("train", schedule={schedule}):
    @task
    def fit():
        return "fitted"

    fit()
"""

BOTH = '[Asset("s3://lake/features/{{ ds }}", name="features"), Asset("s3://lake/labels")]'


def runs_of(factory: sessionmaker[Session], dag_id: str) -> list[DagRun]:
    with factory() as session:
        return list(
            session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id))
        )


def write(dags_folder: Path, schedule: str) -> None:
    (dags_folder / "producers.py").write_text(textwrap.dedent(PRODUCERS))
    (dags_folder / "train.py").write_text(textwrap.dedent(CONSUMER.format(schedule=schedule)))


def test_the_dag_file_declares_producers_and_consumers(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write(dags_folder, BOTH)
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_factory() as session:
        assets = {a.uri: a for a in session.scalars(select(AssetModel))}
        consumers = session.execute(
            select(AssetModel.uri, DagScheduleAssetReference.dag_id).join(DagScheduleAssetReference)
        ).all()
        producers = session.execute(
            select(
                AssetModel.uri, TaskOutletAssetReference.dag_id, TaskOutletAssetReference.task_id
            ).join(TaskOutletAssetReference)
        ).all()
    assert set(assets) == {"s3://lake/features/{{ ds }}", "s3://lake/labels"}
    assert assets["s3://lake/features/{{ ds }}"].name == "features"
    assert sorted(consumers) == [
        ("s3://lake/features/{{ ds }}", "train"),
        ("s3://lake/labels", "train"),
    ]
    assert sorted(producers) == [
        ("s3://lake/features/{{ ds }}", "make_features", "build"),
        ("s3://lake/labels", "make_labels", "label"),
    ]
    # A new version that drops the schedule drops the references too.
    write(dags_folder, "None")
    DagFileProcessor(session_factory, settings).process(now=utcnow())
    with session_factory() as session:
        assert session.scalars(select(DagScheduleAssetReference)).all() == []


@pytest.mark.parametrize(
    ("schedule", "updates", "runs"),
    [
        (BOTH, ["s3://lake/labels"], 0),
        (BOTH, ["s3://lake/labels", "s3://lake/features/{{ ds }}"], 1),
        ('Asset("s3://lake/labels") | Asset("s3://other")', ["s3://lake/labels"], 1),
        (
            'Asset("s3://a") & (Asset("s3://lake/labels") | Asset("s3://c"))',
            ["s3://lake/labels", "s3://c"],
            0,
        ),
        (
            'Asset("s3://a") & (Asset("s3://lake/labels") | Asset("s3://c"))',
            ["s3://c", "s3://a"],
            1,
        ),
    ],
)
def test_a_condition_is_met_by_the_updates_since_the_last_run(
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    schedule: str,
    updates: list[str],
    runs: int,
) -> None:
    write(dags_folder, schedule)
    parse_and_unpause(session_factory, settings, "train")
    with session_scope(session_factory) as session:
        for uri in updates:
            record_event(session, ensure_asset(session, uri), now=utcnow())
    with session_scope(session_factory) as session:
        assert len(create_asset_triggered_runs(session, utcnow())) == runs
    with session_scope(session_factory) as session:
        assert create_asset_triggered_runs(session, utcnow()) == []  # the updates were used
    created = runs_of(session_factory, "train")
    assert len(created) == runs
    if runs:
        assert (created[0].run_type, created[0].triggered_by) == ("asset_triggered", "asset")
        assert created[0].logical_date is None


def test_a_paused_consumer_keeps_its_updates_until_unpaused(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    write(dags_folder, 'Asset("s3://lake/labels")')
    DagFileProcessor(session_factory, settings).process(now=utcnow())  # paused when new
    with session_scope(session_factory) as session:
        record_event(session, ensure_asset(session, "s3://lake/labels"), now=utcnow())
    with session_scope(session_factory) as session:
        assert create_asset_triggered_runs(session, utcnow()) == []
    parse_and_unpause(session_factory, settings, "train")
    with session_scope(session_factory) as session:
        assert len(create_asset_triggered_runs(session, utcnow())) == 1


def test_a_consumer_runs_once_after_both_producers_updated(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    write(dags_folder, BOTH)
    parse_and_unpause(session_factory, settings, "make_features", "make_labels", "train")
    env = daemon_env(settings)
    with running(["scheduler"], env, tmp_path / "scheduler.log"):
        trigger(settings, tmp_path, "make_features", "--logical-date", "2026-03-01")
        wait_for(
            lambda: [r.state for r in runs_of(session_factory, "make_features")] == ["success"],
            "the first producer",
        )
        trigger(settings, tmp_path, "make_labels")
        wait_for(
            lambda: [r.state for r in runs_of(session_factory, "make_labels")] == ["success"],
            "the second producer",
        )
        wait_for(
            lambda: [r.state for r in runs_of(session_factory, "train")] == ["success"],
            "the consumer to run",
        )
        # Another update of one asset alone does not run it again.
        trigger(settings, tmp_path, "make_labels", "--run-id", "again")
        wait_for(
            lambda: (
                len([r for r in runs_of(session_factory, "make_labels") if r.state == "success"])
                == 2
            ),
            "the second producer again",
        )
    assert len(runs_of(session_factory, "train")) == 1
    (run,) = runs_of(session_factory, "train")
    with session_factory() as session:
        events = session.execute(
            select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_dag_id)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .join(DagRunAssetEvent, DagRunAssetEvent.event_id == AssetEvent.id)
            .where(DagRunAssetEvent.dag_run_id == run.id)
            .order_by(AssetEvent.id)
        ).all()
    assert [(uri, source) for uri, _, source in events] == [
        ("s3://lake/features/{{ ds }}", "make_features"),
        ("s3://lake/labels", "make_labels"),
    ]
    assert events[0][1] == {"rows": 1200, "uri": "s3://lake/features/2026-03-01"}
