"""Apache Airflow 3.3.2 on the shapes of `benchmarks/scheduler.py`: measures, never asserts.

    python benchmarks/airflow.py --postgres URL                       # LocalExecutor
    python benchmarks/airflow.py --postgres URL --executor celery --broker redis://127.0.0.1:6379/10
    python benchmarks/airflow.py --postgres URL --only chain50,wide200

Airflow is installed into a virtualenv of its own (``--venv``, created with
``apache-airflow[celery,postgres]==3.3.2`` when it is missing; never into Tradewind's
environment). For each shape the database named by ``--postgres`` is dropped and
created again, migrated, and a fresh set of Airflow processes is started: the API server
(Airflow 3's tasks report through its execution API), the scheduler, the DAG processor
and, with ``--executor celery``, ``--workers`` Celery workers of ``--concurrency`` slots
on the broker's database (flushed first). The DAG is the same no-op PythonOperator DAG,
written with Airflow's own imports; runs are triggered through the REST API once the
DAG is parsed, and the time is the span from the first run's ``queued_at`` to the last
run's ``end_date`` as Airflow's database recorded them. CPU is every Airflow process's
(``getrusage`` of this process's children once they have exited, start-up included);
``idle_rss_mb`` is their summed RSS once the DAG is parsed, before the runs.

Compare with `benchmarks/scheduler.py` run with the same ``--postgres`` and executor:
both print the time a fixed pure-Python loop takes, so runs on one machine can be put
side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import free_port  # noqa: E402
from benchmarks.scheduler import DAG_SOURCE as TRADEWIND_DAG_SOURCE  # noqa: E402
from benchmarks.scheduler import (  # noqa: E402
    SHAPES,
    RssSampler,
    children_cpu_since,
    loop_seconds,
    prepare_shape,
    report,
    shape_row,
    tree_rss_mb,
)

# Celery 5.7 dropped a name the Celery provider of Airflow 3.3.2 imports.
AIRFLOW = ["apache-airflow[celery,postgres]==3.3.2", "celery<5.7"]
DEFAULT_VENV = Path.home() / ".cache" / "tradewind" / "airflow-3.3.2"

# The very DAG of `benchmarks/scheduler.py`, with Airflow's imports (its default
# schedule is None, as ours is).
DAG_SOURCE = TRADEWIND_DAG_SOURCE.replace(
    "from tradewind import DAG", "from airflow.sdk import DAG"
).replace(
    "from tradewind.operators.python import PythonOperator",
    "from airflow.providers.standard.operators.python import PythonOperator",
)
assert "tradewind" not in DAG_SOURCE


def ensure_airflow(venv: Path) -> Path:
    """The ``airflow`` command of ``venv``, installing Airflow there first if needed."""
    airflow = venv / "bin" / "airflow"
    if not airflow.exists():
        print(f"installing {' '.join(AIRFLOW)} into {venv} (minutes, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *AIRFLOW], check=True)
    return airflow


def reset_database(url: str) -> str:
    """Drop and create the database of ``url``; its URL for Airflow (psycopg2)."""
    from sqlalchemy import create_engine, text

    from tradewind.db import normalize_url

    target = normalize_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return target.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


class AirflowHarness:
    def __init__(self, args: argparse.Namespace, airflow: Path) -> None:
        self.args = args
        self.airflow = airflow
        self.results: dict[str, Any] = {}

    def env(self, home: Path, dags: Path, sql_url: str, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TRADEWIND"))}
        executor = "CeleryExecutor" if self.args.executor == "celery" else "LocalExecutor"
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__EXECUTOR=executor,
            AIRFLOW__CORE__PARALLELISM=str(self.args.parallelism),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG="1000",
            AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG="100",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(port),
            AIRFLOW__API_AUTH__JWT_SECRET="tradewind-benchmark-only",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sql_url,
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        )
        if self.args.executor == "celery":
            env.update(
                AIRFLOW__CELERY__BROKER_URL=self.args.broker,
                AIRFLOW__CELERY__RESULT_BACKEND="db+" + sql_url,
                AIRFLOW__CELERY__WORKER_CONCURRENCY=str(self.args.concurrency),
            )
        return env

    def commands(self) -> list[list[str]]:
        airflow = str(self.airflow)
        commands = [
            [airflow, "api-server"],
            [airflow, "scheduler"],
            [airflow, "dag-processor"],
        ]
        celery = ["celery", "worker", "--concurrency", str(self.args.concurrency)]
        for number in range(self.args.workers if self.args.executor == "celery" else 0):
            commands.append([airflow, *celery, "--celery-hostname", f"bench-{number}@%h"])
        return commands

    def measure(self, name: str) -> None:
        import httpx

        _, n, runs = SHAPES[name]
        work, home, dags = prepare_shape(name, "airflow", DAG_SOURCE)
        port = free_port()
        sql_url = reset_database(self.args.postgres)
        env = self.env(home, dags, sql_url, port)
        if self.args.executor == "celery":
            import redis

            redis.Redis.from_url(self.args.broker).flushdb()
        migrate = [str(self.airflow), "db", "migrate"]
        subprocess.run(migrate, env=env, check=True, capture_output=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        processes = []
        for number, command in enumerate(self.commands()):
            log = (work / f"process{number}.log").open("w")
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
        sampler = RssSampler([p.pid for p in processes])
        sampler.start()
        api = f"http://127.0.0.1:{port}"
        try:
            token = self._wait_for_api(api)
            headers = {"Authorization": f"Bearer {token}"}
            self._wait_for_dag(api, headers, name)
            ready = time.perf_counter() - started
            time.sleep(1.0)
            idle_rss = sum(tree_rss_mb(p.pid) for p in processes)
            for i in range(runs):
                response = httpx.post(
                    f"{api}/api/v2/dags/{name}/dagRuns",
                    json={"dag_run_id": f"bench_{i}", "logical_date": None},
                    headers=headers,
                    timeout=30,
                )
                response.raise_for_status()
            span = self._wait_for_runs(api, headers, name, runs)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        peak = sampler.stop()
        row = {
            **shape_row(n * runs, span, children_cpu_since(before)),
            "peak_rss_mb": round(peak, 1),
            "idle_rss_mb": round(idle_rss, 1),
            "ready_s": round(ready, 2),
        }
        report(self.results, name, row, span)
        shutil.rmtree(work, ignore_errors=True)

    def _wait_for_api(self, api: str) -> str:
        """A token from the API server once it answers (all users are admins here)."""
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{api}/auth/token", timeout=5)
                if response.status_code < 300:
                    return str(response.json()["access_token"])
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("Airflow's API server never answered")

    def _wait_for_dag(self, api: str, headers: dict[str, str], dag_id: str) -> None:
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            response = httpx.get(f"{api}/api/v2/dags/{dag_id}", headers=headers, timeout=10)
            if response.status_code == 200 and not response.json().get("is_paused", True):
                return
            time.sleep(0.5)
        raise RuntimeError(f"Airflow never parsed {dag_id}")

    def _wait_for_runs(self, api: str, headers: dict[str, str], dag_id: str, runs: int) -> float:
        """Seconds from the first run's ``queued_at`` to the last run's ``end_date``."""
        from datetime import datetime

        import httpx

        url = f"{api}/api/v2/dags/{dag_id}/dagRuns?limit={runs}"
        while True:
            response = httpx.get(url, headers=headers, timeout=30)
            response.raise_for_status()  # the API server died: its log says why
            found = response.json()["dag_runs"]
            ended = [r for r in found if r["state"] in ("success", "failed")]
            if len(ended) == runs:
                failed = [r["dag_run_id"] for r in ended if r["state"] == "failed"]
                if failed:
                    raise RuntimeError(f"{len(failed)} run(s) of {dag_id} failed")
                first = min(datetime.fromisoformat(r["queued_at"]) for r in ended)
                last = max(datetime.fromisoformat(r["end_date"]) for r in ended)
                return (last - first).total_seconds()
            time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", required=True, help="database (reset)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Airflow's virtualenv")
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--only", default=",".join(SHAPES))
    parser.add_argument("--executor", choices=["local", "celery"], default="local")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/10", help="celery: broker")
    parser.add_argument("--workers", type=int, default=2, help="celery: worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="celery: slots per worker")
    args = parser.parse_args()
    harness = AirflowHarness(args, ensure_airflow(args.venv))
    harness.results["loop_seconds"] = loop_seconds()
    shape = (
        f"{args.workers} workers x concurrency {args.concurrency}, "
        if args.executor == "celery"
        else ""
    )
    print(
        f"Airflow 3.3.2, {os.cpu_count()} cores, {args.postgres}, {args.executor} executor, "
        f"{shape}parallelism {args.parallelism}; "
        f"sum(range(30_000_000)) takes {harness.results['loop_seconds']} s here",
        flush=True,
    )
    for name in args.only.split(","):
        harness.measure(name)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"airflow-{args.executor}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"executor": args.executor, **harness.results}, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
