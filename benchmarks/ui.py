"""Web UI server time: measures, never asserts.

    python benchmarks/ui.py --postgres URL              # the database is reset
    python benchmarks/ui.py --postgres URL --requests 50

Fills the database with ``--dags`` one-task DAGs (10 finished runs each) and one DAG of
``--tasks`` tasks with ``--grid-runs`` finished runs, starts `tradewind webserver` (one
worker) on a free loopback port, logs in, and times pages one request at a time, so
each figure is the server's time plus a loopback round trip:

- the DAG list (first page, and a page deep in the list),
- the wide DAG's grid (every task by every run) and graph.

Prints the median and 95th percentile per page and the size of each page.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import ensure_database, free_port  # noqa: E402

MANY = """
from datetime import datetime
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

for i in range({count}):
    with DAG(
        f"many_{{i:04d}}",
        schedule="@daily",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        tags=["bench", f"group{{i % 10}}"],
    ):
        EmptyOperator(task_id="noop")
"""
WIDE = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator
from tradewind.sdk.taskgroup import TaskGroup

with DAG("wide", schedule=None):
    start = EmptyOperator(task_id="start")
    for g in range({tasks} // 100):
        with TaskGroup(f"part{{g:02d}}"):
            for i in range(100):
                start >> EmptyOperator(task_id=f"t{{i:03d}}")
"""
USER, PASSWORD = "bench", "bench-password"


def fill(env: dict[str, str], grid_runs: int) -> None:
    from sqlalchemy import update

    from tradewind.auth.users import create_user
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import make_engine, make_session_factory, session_scope
    from tradewind.models import DagModel, DagRun, TaskInstance
    from tradewind.models.base import utcnow
    from tradewind.settings import get_settings
    from tradewind.state import DagRunType

    ensure_database(env["TRADEWIND_DATABASE_URL"])
    subprocess.run(["tradewind", "db", "reset", "--yes"], env=env, check=True, capture_output=True)
    subprocess.run(["tradewind", "dags", "reserialize"], env=env, check=True, capture_output=True)
    os.environ.update(env)
    factory = make_session_factory(make_engine(get_settings()))
    with session_scope(factory) as session:
        create_user(session, USER, PASSWORD, "admin")
        models = list(session.query(DagModel).order_by(DagModel.dag_id))
    now = utcnow()
    for start in range(0, len(models), 50):
        with session_scope(factory) as session:
            for detached in models[start : start + 50]:
                model = session.merge(detached)
                version = latest_version(session, model.dag_id)
                count = grid_runs if model.dag_id == "wide" else 10
                for n in range(count):
                    request = RunRequest(
                        run_type=DagRunType.MANUAL, run_after=now, run_id=f"r{n:03d}"
                    )
                    create_dag_run(session, model, version, request, now=now)
    with session_scope(factory) as session:
        session.execute(update(DagRun).values(state="success", start_date=now, end_date=now))
        session.execute(update(TaskInstance).values(state="success", start_date=now, end_date=now))


def time_pages(base: str, pages: dict[str, str], requests: int) -> dict[str, Any]:
    import httpx

    results: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        login = client.post("/login", data={"username": USER, "password": PASSWORD})
        if login.status_code != 303:
            raise SystemExit(f"login failed: {login.status_code} {login.text[:200]}")
        for name, path in pages.items():
            client.get(path)  # warm: templates compiled, connections open
            timings = []
            size = 0
            for _ in range(requests):
                began = time.perf_counter()
                answer = client.get(path)
                timings.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    raise SystemExit(f"{path}: {answer.status_code}")
                size = len(answer.content)
            timings.sort()
            results[name] = {
                "path": path,
                "median_ms": round(1000 * statistics.median(timings), 1),
                "p95_ms": round(1000 * timings[int(0.95 * (len(timings) - 1))], 1),
                "kilobytes": round(size / 1024, 1),
            }
            print(
                f"{name:<22} median {results[name]['median_ms']:>7} ms   "
                f"p95 {results[name]['p95_ms']:>7} ms   {results[name]['kilobytes']:>8} KiB"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", required=True, help="a database to reset")
    parser.add_argument("--dags", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks of the wide DAG")
    parser.add_argument("--grid-runs", type=int, default=25)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    args = parser.parse_args()

    import httpx

    work = Path(tempfile.mkdtemp(prefix="tw-ui-bench-"))
    (work / "dags").mkdir()
    (work / "dags" / "many.py").write_text(MANY.format(count=args.dags))
    (work / "dags" / "wide.py").write_text(WIDE.format(tasks=args.tasks))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(
        TRADEWIND_HOME=str(work / "home"),
        TRADEWIND_DAGS_FOLDER=str(work / "dags"),
        TRADEWIND_DATABASE_URL=args.postgres,
        TRADEWIND_LOG_LEVEL="WARNING",
        TRADEWIND_API_PORT=str(port),
        TRADEWIND_UI_GRID_RUNS=str(args.grid_runs),
    )
    started = time.perf_counter()
    fill(env, args.grid_runs)
    print(
        f"filled {args.dags} DAGs x 10 runs and a {args.tasks}-task DAG x {args.grid_runs} runs "
        f"in {time.perf_counter() - started:.1f} s"
    )
    log = (work / "webserver.log").open("w")
    server = subprocess.Popen(
        ["tradewind", "webserver", "--workers", "1"], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deep = max(1, args.dags // 50 - 1)
    pages = {
        "dag list (page 1)": "/dags",
        f"dag list (page {deep})": f"/dags?page={deep}",
        "dag list (search)": "/dags?q=many_09",
        "grid (wide)": "/dags/wide",
        "graph (wide)": "/dags/wide/graph",
    }
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/v2/version", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        results = {
            "arguments": vars(args),
            "pages": time_pages(base, pages, args.requests),
        }
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ui-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
