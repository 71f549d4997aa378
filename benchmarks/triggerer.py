"""The triggerer: what holding many deferred tasks costs, and how soon a task resumes
after its trigger fires. Measures, never asserts.

    python benchmarks/triggerer.py                          # SQLite
    python benchmarks/triggerer.py --postgres URL           # the database is reset
    python benchmarks/triggerer.py --holds 1000,10000 --resumes 20

Two parts:

- **hold**: N deferred task instances, each waiting on its own `DateTimeTrigger`, are
  written straight into the database; one `tradewind triggerer --capacity N` claims and
  runs them. Reported: seconds until it has claimed all N, its peak RSS, its CPU over a quiet
  hold of ``--hold-seconds`` (as a share of one core), then, all triggers set to fire at
  the same moment, the seconds until every task instance is back to ``scheduled``.
- **resume**: a scheduler (local executor) and a triggerer run a DAG whose task defers to
  a `DateTimeTrigger` ~1.5 s ahead and records, when it resumes, how late it is. Reported:
  median, 95th percentile and worst of the delay from the trigger's moment to the task's
  code running again, over ``--resumes`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import ensure_database  # noqa: E402
from benchmarks.scheduler import RssSampler  # noqa: E402

HOLDER = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

with DAG("holder", schedule=None):
    EmptyOperator(task_id="placeholder")
"""
NAPPER = """
import time
from datetime import datetime, timedelta, timezone
from tradewind import DAG
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.triggers.temporal import DateTimeTrigger


class Nap(BaseOperator):
    def execute(self, context):
        moment = datetime.now(timezone.utc) + timedelta(seconds=1.5)
        self.defer(trigger=DateTimeTrigger(moment), method_name="woke")

    def woke(self, context, event=None):
        return (datetime.now(timezone.utc) - event).total_seconds()


with DAG("napper", schedule=None, max_active_runs=64):
    Nap(task_id="nap")
"""


def environment(work: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(
        TRADEWIND_HOME=str(work / "home"),
        TRADEWIND_DAGS_FOLDER=str(work / "dags"),
        TRADEWIND_LOG_LEVEL="WARNING",
        TRADEWIND_PARALLELISM="8",
        TRADEWIND_DAGS_ARE_PAUSED_AT_CREATION="false",
    )
    if database_url:
        env["TRADEWIND_DATABASE_URL"] = database_url
    return env


def prepare(env: dict[str, str], source: str, name: str) -> Any:
    """A fresh database with one DAG file parsed; returns a session factory on it."""
    dags = Path(env["TRADEWIND_DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    (dags / f"{name}.py").write_text(source)
    if "TRADEWIND_DATABASE_URL" in env:
        ensure_database(env["TRADEWIND_DATABASE_URL"])
        subprocess.run(
            ["tradewind", "db", "reset", "--yes"], env=env, check=True, capture_output=True
        )
    subprocess.run(["tradewind", "dags", "reserialize"], env=env, check=True, capture_output=True)
    os.environ.update(env)
    from tradewind.db import make_engine, make_session_factory
    from tradewind.settings import get_settings

    return make_session_factory(make_engine(get_settings()))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait(condition: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


# --- hold ------------------------------------------------------------------------------


def hold(count: int, database_url: str | None, hold_seconds: float) -> dict[str, float]:
    from sqlalchemy import func, insert, select, update

    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import session_scope
    from tradewind.models import DagModel, TaskInstance, Trigger
    from tradewind.models.base import utcnow
    from tradewind.state import DagRunType
    from tradewind.triggers.encoding import encode

    work = Path(tempfile.mkdtemp(prefix="tw-trig-hold-"))
    env = environment(work, database_url)
    factory = prepare(env, HOLDER, "holder")
    far = datetime.now(UTC) + timedelta(days=1)
    with session_scope(factory) as session:
        model = session.get(DagModel, "holder")
        run = create_dag_run(
            session,
            model,  # type: ignore[arg-type]
            latest_version(session, "holder"),
            RunRequest(run_type=DagRunType.MANUAL, run_after=utcnow(), logical_date=utcnow()),
            now=utcnow(),
        )
        run.state = "running"
        kwargs = encode({"moment": far})
        ids = session.scalars(
            insert(Trigger).returning(Trigger.id),
            [
                {
                    "classpath": "tradewind.triggers.temporal.DateTimeTrigger",
                    "kwargs": kwargs,
                    "created_date": utcnow(),
                }
                for _ in range(count)
            ],
        ).all()
        session.execute(
            insert(TaskInstance),
            [
                {
                    "dag_id": "holder",
                    "run_id": run.run_id,
                    "task_id": f"t{i:05d}",
                    "map_index": -1,
                    "try_number": 1,
                    "state": "deferred",
                    "trigger_id": trigger_id,
                    "next_method": "execute_complete",
                    "next_kwargs": {},
                    "dag_version_id": run.dag_version_id,
                }
                for i, trigger_id in enumerate(ids)
            ],
        )

    def owned() -> int:
        with factory() as session:
            return int(
                session.scalar(select(func.count()).where(Trigger.triggerer_id.is_not(None))) or 0
            )

    log = (work / "triggerer.log").open("w")
    command = ["tradewind", "triggerer", "--capacity", str(count)]
    triggerer = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    sampler = RssSampler([triggerer.pid])
    sampler.start()
    try:
        claimed = wait(lambda: owned() == count, 600, f"the triggerer to claim {count}")
        time.sleep(2)  # the last batch starts running
        cpu_before, start = cpu_seconds(triggerer.pid), time.monotonic()
        time.sleep(hold_seconds)
        idle_cpu = (cpu_seconds(triggerer.pid) - cpu_before) / (time.monotonic() - start)
        # Everything fires at once: move every moment to 4 s from now. The triggerer
        # only reads kwargs when it starts a trigger, so restart it on the new ones.
        fire_at = datetime.now(UTC) + timedelta(seconds=4)
        triggerer.terminate()
        triggerer.wait(timeout=60)
        with session_scope(factory) as session:
            session.execute(update(Trigger).values(kwargs=encode({"moment": fire_at})))
        triggerer = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        sampler.roots.append(triggerer.pid)

        def resumed() -> int:
            with factory() as session:
                return int(
                    session.scalar(select(func.count()).where(TaskInstance.state == "scheduled"))
                    or 0
                )

        wait(lambda: resumed() == count, 600, "every task instance to resume")
        fired_in = (datetime.now(UTC) - fire_at).total_seconds()
    finally:
        peak = sampler.stop()
        if triggerer.poll() is None:
            triggerer.terminate()
            triggerer.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "triggers": count,
        "claimed_s": round(claimed, 2),
        "peak_rss_mb": round(peak, 1),
        "idle_cpu_share_of_a_core": round(idle_cpu, 4),
        "all_fired_to_all_scheduled_s": round(fired_in, 2),
    }


# --- resume -----------------------------------------------------------------------------


def resume(runs: int, database_url: str | None) -> dict[str, Any]:
    from sqlalchemy import select

    from tradewind.models import DagRun, XCom

    work = Path(tempfile.mkdtemp(prefix="tw-trig-resume-"))
    env = environment(work, database_url)
    factory = prepare(env, NAPPER, "napper")
    logs = [(work / f"{name}.log").open("w") for name in ("scheduler", "triggerer")]
    daemons = [
        subprocess.Popen(["tradewind", "scheduler"], env=env, stdout=logs[0], stderr=logs[0]),
        subprocess.Popen(["tradewind", "triggerer"], env=env, stdout=logs[1], stderr=logs[1]),
    ]
    try:
        time.sleep(3)
        for number in range(runs):
            subprocess.run(
                ["tradewind", "dags", "trigger", "napper", "--run-id", f"r{number:03d}"],
                env=env,
                check=True,
                capture_output=True,
            )
            time.sleep(0.2)

        def finished() -> bool:
            with factory() as session:
                states = session.scalars(select(DagRun.state)).all()
            return len(states) == runs and all(s == "success" for s in states)

        wait(finished, 300, "every run to succeed")
        with factory() as session:
            delays = [float(v) for v in session.scalars(select(XCom.value))]
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            daemon.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    delays.sort()
    return {
        "runs": runs,
        "moment_to_code_median_ms": round(1000 * statistics.median(delays), 1),
        "moment_to_code_p95_ms": round(1000 * delays[int(0.95 * (len(delays) - 1))], 1),
        "moment_to_code_max_ms": round(1000 * delays[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", help="metadata DB URL (default: SQLite)")
    parser.add_argument("--holds", default="1000,10000", help="trigger counts to hold")
    parser.add_argument("--hold-seconds", type=float, default=20.0)
    parser.add_argument("--resumes", type=int, default=20, help="runs for the resume part")
    args = parser.parse_args()
    results: dict[str, Any] = {"database": args.postgres or "sqlite", "cores": os.cpu_count()}
    print(f"{os.cpu_count()} cores, {args.postgres or 'SQLite'}")
    for count in [int(c) for c in args.holds.split(",") if c]:
        figures = hold(count, args.postgres, args.hold_seconds)
        results[f"hold_{count}"] = figures
        print(json.dumps(figures))
    if args.resumes:
        figures = resume(args.resumes, args.postgres)
        results["resume"] = figures
        print(json.dumps(figures))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"triggerer-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
