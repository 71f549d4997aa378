"""Backfills on SQLite and Postgres: how the scheduler's side creates their runs (the
cap, reprocessing, pausing, cancelling), the CLI, and a real scheduler process running
30 daily runs at most 3 at a time."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.backfills import advance_backfills
from scheduler.run_creation import start_queued_runs
from tests.integration.daemons import daemon_env, running, wait_for
from tests.integration.test_scheduler import parse_and_unpause
from tradewind import backfills
from tradewind.backfills import BackfillRequest
from tradewind.cli.main import main
from tradewind.db import session_scope
from tradewind.errors import BackfillAlreadyRunning, BackfillError, ParamValidationError
from tradewind.models import Backfill, BackfillDagRun, DagRun
from tradewind.models.base import utcnow
from tradewind.settings import Settings

pytestmark = pytest.mark.integration

DAILY = """
import time
from datetime import datetime
from tradewind import DAG, Param, task

with DAG("daily", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False,
         params={{"source": Param("prod", type="string")}}):
    @task
    def load(ds=None):
        time.sleep({sleep})
        return ds

    load()
"""

JAN = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return JAN + timedelta(days=n - 1)


@pytest.fixture
def daily(dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]) -> str:
    (dags_folder / "daily.py").write_text(textwrap.dedent(DAILY.format(sleep=0.2)))
    parse_and_unpause(session_factory, settings, "daily")
    return "daily"


def request(**changes: object) -> BackfillRequest:
    values: dict[str, object] = {"dag_id": "daily", "from_date": day(1), "to_date": day(10)}
    values.update(changes)
    return BackfillRequest(**values)  # type: ignore[arg-type]


def create(factory: sessionmaker[Session], **changes: object) -> int:
    with session_scope(factory) as session:
        return backfills.create_backfill(session, request(**changes), now=utcnow()).id


def tick(factory: sessionmaker[Session]) -> list[DagRun]:
    """The scheduler's backfill step and the start of queued runs, once."""
    with session_scope(factory) as session:
        created = advance_backfills(session, utcnow())
        start_queued_runs(session, utcnow())
        return created


def runs(factory: sessionmaker[Session], dag_id: str = "daily") -> list[DagRun]:
    with factory() as session:
        return list(
            session.scalars(
                select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.logical_date)
            )
        )


def finish(factory: sessionmaker[Session], state: str = "success") -> None:
    with session_scope(factory) as session:
        for run in session.scalars(select(DagRun).where(DagRun.state == "running")):
            run.state, run.end_date = state, utcnow()


# --- the plan -----------------------------------------------------------------------------


def test_the_plan_follows_the_schedule_and_can_run_backwards(
    daily: str, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        planned = backfills.plan(session, request(), now=utcnow())
        backwards = backfills.plan(session, request(run_backwards=True), now=utcnow())
    assert [p.logical_date for p in planned] == [day(n) for n in range(1, 11)]
    assert [p.logical_date for p in backwards] == [day(n) for n in range(10, 0, -1)]
    # As in Airflow 3, a cron schedule's runs have an empty data interval at their date.
    assert planned[0].info.data_interval is not None
    assert planned[0].info.data_interval.end == day(1)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"from_date": day(5), "to_date": day(1)}, BackfillError, "is after to_date"),
        ({"reprocess_behavior": "all"}, BackfillError, "reprocess_behavior must be one of"),
        ({"max_active_runs": 0}, BackfillError, "max_active_runs must be at least 1"),
        ({"from_date": datetime(2026, 1, 1)}, BackfillError, "from_date must have a time zone"),
        (
            {
                "from_date": datetime(2999, 1, 1, tzinfo=UTC),
                "to_date": datetime(2999, 2, 1, tzinfo=UTC),
            },
            BackfillError,
            "are due already",
        ),
        ({"conf": {"source": 5}}, ParamValidationError, "dag_run_conf does not fit"),
        ({"dag_id": "nope"}, Exception, "DAG 'nope' not found"),
    ],
)
def test_a_bad_backfill_request_is_refused_with_the_reason(
    daily: str,
    session_factory: sessionmaker[Session],
    changes: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message), session_scope(session_factory) as session:
        backfills.create_backfill(session, request(**changes), now=utcnow())


def test_a_dag_without_a_time_schedule_cannot_be_backfilled(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    source = "from tradewind import DAG, task\nwith DAG('manual_only', schedule=None):\n"
    source += "    @task\n    def t():\n        pass\n    t()\n"
    (dags_folder / "manual_only.py").write_text(source)
    parse_and_unpause(session_factory, settings, "manual_only")
    with pytest.raises(BackfillError, match="needs a time-based schedule"):
        create(session_factory, dag_id="manual_only")


def test_one_backfill_at_a_time_per_dag(daily: str, session_factory: sessionmaker[Session]) -> None:
    first = create(session_factory)
    with pytest.raises(BackfillAlreadyRunning, match=f"backfill cancel {first}"):
        create(session_factory)


# --- the scheduler's side -----------------------------------------------------------------


def test_runs_are_created_as_room_frees_up_and_tagged_backfill(
    daily: str, session_factory: sessionmaker[Session]
) -> None:
    backfill_id = create(session_factory, max_active_runs=3, conf={"source": "archive"})
    assert runs(session_factory) == []  # creating only records the plan
    assert len(tick(session_factory)) == 3
    assert len(tick(session_factory)) == 0  # no room until one ends
    finish(session_factory)
    assert len(tick(session_factory)) == 3
    created = runs(session_factory)
    assert [r.logical_date for r in created] == [day(n) for n in range(1, 7)]
    assert {(r.run_type, r.triggered_by, r.backfill_id) for r in created} == {
        ("backfill", "backfill", backfill_id)
    }
    assert created[0].run_id == f"backfill__{day(1).isoformat()}"
    assert created[0].conf == {"source": "archive"}
    assert created[0].data_interval_end == day(1)
    for _ in range(3):
        finish(session_factory)
        tick(session_factory)
    finish(session_factory)
    tick(session_factory)
    with session_factory() as session:
        backfill = session.get(Backfill, backfill_id)
        assert backfill is not None
        assert backfill.completed_at is not None
        done = backfills.progress(session, [backfill_id])[backfill_id]
    assert (done.total, done.succeeded, done.done) == (10, 10, 10)


def test_existing_runs_are_skipped_or_run_again_as_reprocess_behavior_says(
    daily: str, session_factory: sessionmaker[Session]
) -> None:
    # Runs of days 1-3: success, failed, running.
    backfill_id = create(session_factory, to_date=day(3))
    tick(session_factory)
    with session_scope(session_factory) as session:
        for run, state in zip(runs(session_factory), ("success", "failed", "running"), strict=True):
            session.get(DagRun, run.id).state = state  # type: ignore[union-attr]
        backfills.cancel(session, backfill_id, now=utcnow())

    def outcome(behavior: str) -> list[str | None]:
        new = create(session_factory, to_date=day(3), reprocess_behavior=behavior)
        tick(session_factory)
        with session_scope(session_factory) as session:
            dates = session.scalars(
                select(BackfillDagRun)
                .where(BackfillDagRun.backfill_id == new)
                .order_by(BackfillDagRun.sort_ordinal)
            ).all()
            result = [d.exception_reason or "run" for d in dates]
            backfills.cancel(session, new, now=utcnow())
        return result

    skipped = outcome("none")
    assert skipped[0].startswith("a run of this date exists (success")
    assert skipped[1].startswith("a run of this date exists (failed")
    assert skipped[2] == "a run of this date is running"
    again = outcome("failed")
    assert again[0].startswith("a run of this date exists (success")
    assert again[1:] == ["run", "a run of this date is running"]
    rerun = runs(session_factory)[1]
    assert (rerun.state, rerun.run_type, rerun.clear_number) == ("running", "backfill", 1)


def test_a_paused_backfill_waits_and_a_cancelled_one_creates_no_more_runs(
    daily: str, session_factory: sessionmaker[Session]
) -> None:
    backfill_id = create(session_factory, max_active_runs=2)
    with (
        pytest.raises(
            BackfillError, match="unknown backfill action 'stop': use one of pause, unpause, cancel"
        ),
        session_scope(session_factory) as session,
    ):
        backfills.change(session, backfill_id, "stop", now=utcnow())
    with session_scope(session_factory) as session:
        backfills.change(session, backfill_id, "pause", now=utcnow())
    assert tick(session_factory) == []
    with session_scope(session_factory) as session:
        backfills.set_paused(session, backfill_id, False, now=utcnow())
    assert len(tick(session_factory)) == 2
    with session_scope(session_factory) as session:
        backfills.cancel(session, backfill_id, now=utcnow())
    finish(session_factory)
    for _ in range(3):
        assert tick(session_factory) == []
    assert len(runs(session_factory)) == 2
    with session_factory() as session:
        done = backfills.progress(session, [backfill_id])[backfill_id]
        backfill = session.get(Backfill, backfill_id)
        assert backfill is not None
        assert backfill.completed_at is not None
    assert (done.total, done.succeeded, done.skipped) == (10, 2, 8)


def test_a_backfill_s_tasks_queue_behind_those_of_other_runs(
    daily: str, session_factory: sessionmaker[Session]
) -> None:
    from scheduler.queueing import pick_for_queue
    from scheduler.run_driver import advance_run
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.models import DagModel
    from tradewind.state import DagRunType

    create(session_factory, to_date=day(2))
    tick(session_factory)
    with session_scope(session_factory) as session:
        model = session.get(DagModel, "daily")
        assert model is not None
        manual = create_dag_run(
            session,
            model,
            latest_version(session, "daily"),
            RunRequest(run_type=DagRunType.MANUAL, run_after=utcnow(), logical_date=day(200)),
            now=utcnow(),
        )
        start_queued_runs(session, utcnow())
        for run in session.scalars(select(DagRun)):
            advance_run(session, run, now=utcnow())
        picked = pick_for_queue(session, slots=1, now=utcnow())
        assert [ti.run_id for ti in picked] == [manual.run_id]
        picked = pick_for_queue(session, slots=3, now=utcnow())
        assert picked[0].run_id == manual.run_id
        assert {ti.run_id for ti in picked[1:]} == {
            f"backfill__{day(1).isoformat()}",
            f"backfill__{day(2).isoformat()}",
        }


# --- the command line ---------------------------------------------------------------------


def test_the_cli_dry_run_lists_dates_and_creates_nothing(
    daily: str, session_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backfill", "create", "--dag-id", "daily", "--from-date", "2026-01-01"]
    code = main([*args, "--to-date", "2026-01-03", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2026-01-01T00:00:00+00:00  create" in out
    assert "3 date(s); dry run, nothing created." in out
    with session_factory() as session:
        assert session.scalars(select(Backfill)).all() == []

    code = main([*args, "--to-date", "2026-01-03", "--conf", '{"source": "x"}'])
    assert code == 0
    assert "Created backfill 1 of daily: 3 date(s)" in capsys.readouterr().out
    assert main(["backfill", "pause", "1"]) == 0
    assert main(["backfill", "list", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert listed[0]["state"] == "paused"
    assert listed[0]["runs"] == "0/3"
    assert main(["backfill", "cancel", "1"]) == 0
    assert main(["backfill", "pause", "1"]) == 1
    assert "has completed" in capsys.readouterr().err


# --- a real scheduler -----------------------------------------------------------------------


def test_a_scheduler_runs_30_daily_runs_never_more_than_3_at_once(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    (dags_folder / "daily.py").write_text(textwrap.dedent(DAILY.format(sleep=0.3)))
    parse_and_unpause(session_factory, settings, "daily")
    env = daemon_env(settings)
    args = ["backfill", "create", "--dag-id", "daily", "--from-date", "2026-01-01"]
    args += ["--to-date", "2026-01-30", "--max-active-runs", "3", "--wait"]
    with (
        running(["scheduler"], env, tmp_path / "scheduler.log"),
        running(args, env, tmp_path / "backfill.log") as backfill,
    ):
        assert backfill.process.wait(timeout=300) == 0, backfill.output()
    out = backfill.output()
    assert "Created backfill 1 of daily: 30 date(s)" in out
    assert "30/30 done" in out
    assert "Backfill 1 completed." in out
    done = [r for r in runs(session_factory) if r.backfill_id is not None]
    assert len(done) == 30
    assert {(r.run_type, r.state) for r in done} == {("backfill", "success")}
    # Never more than 3 of them between start and end at any moment.
    events = sorted(
        [(r.start_date, 1) for r in done] + [(r.end_date, -1) for r in done],
        key=lambda e: (e[0], e[1]),
    )
    active = peak = 0
    for _, step in events:
        active += step
        peak = max(peak, active)
    assert 1 <= peak <= 3


def test_a_cancelled_backfill_stops_creating_runs_in_a_running_scheduler(
    dags_folder: Path, settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    (dags_folder / "daily.py").write_text(textwrap.dedent(DAILY.format(sleep=1.5)))
    parse_and_unpause(session_factory, settings, "daily")
    env = daemon_env(settings)
    with running(["scheduler"], env, tmp_path / "scheduler.log"):
        backfill_id = create(session_factory, to_date=day(20), max_active_runs=2)
        wait_for(lambda: len(runs(session_factory)) >= 2, "the first runs")
        with running(["backfill", "cancel", str(backfill_id)], env, tmp_path / "c.log") as cancel:
            assert cancel.process.wait(timeout=60) == 0, cancel.output()
        count = len(runs(session_factory))
        wait_for(
            lambda: all(r.state in ("success", "failed") for r in runs(session_factory)),
            "the started runs to end",
        )
        with session_factory() as session:
            backfill = session.get(Backfill, backfill_id)
            assert backfill is not None
            assert backfill.completed_at is not None
    assert len(runs(session_factory)) == count < 20
