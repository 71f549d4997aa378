"""REST API throughput and latency: measures, never asserts.

    python benchmarks/api.py --postgres URL             # the database is reset
    python benchmarks/api.py --postgres URL --workers 2 --seconds 10 --concurrency 32

Fills Postgres with ``--dags`` DAGs and ``--runs`` finished runs, starts
`tradewind webserver --workers N` on a free loopback port, and drives two calls with a
load generator (``--concurrency`` requests in flight) for ``--seconds`` each:
``GET /api/v2/dags?limit=100`` and ``GET /api/v2/dags/{id}/dagRuns?limit=100``.
Prints requests per second and p50/p99 latency per call.

The webserver keeps the DAG list it served until the DAG tables change (Postgres
notifies it). ``--changes-per-second N`` makes that honest: while the calls run, another
connection moves a DAG's next run N times a second, as a busy scheduler would, and every
change makes the next request of each page query again.

The load generator is `wrk` when it is installed (``apt-get install wrk``): written in C,
it leaves the two cores to the server. Otherwise, or with ``--generator httpx``, an
asyncio loop of httpx requests, which itself needs about a core at these rates, so its
figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAG_SOURCE = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator

for i in range({count}):
    with DAG(f"bench_{{i:04d}}", tags=["bench", f"group{{i % 10}}"]):
        EmptyOperator(task_id="noop")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_database(url: str) -> None:
    """Create the benchmark's database when the server does not have it yet."""
    from sqlalchemy import create_engine, text

    from tradewind.db import normalize_url

    target = normalize_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def fill(env: dict[str, str], dags: int, runs: int) -> None:
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
        create_user(session, "bench", "bench-password", "viewer")
        models = list(session.query(DagModel).order_by(DagModel.dag_id))
        versions = {m.dag_id: latest_version(session, m.dag_id) for m in models}
    now = utcnow()
    per_dag = max(runs // len(models), 1)
    for start in range(0, len(models), 20):
        with session_scope(factory) as session:
            for detached in models[start : start + 20]:
                model = session.merge(detached)
                for n in range(per_dag):
                    create_dag_run(
                        session,
                        model,
                        versions[model.dag_id],
                        RunRequest(run_type=DagRunType.MANUAL, run_after=now, run_id=f"r{n:05d}"),
                        now=now,
                    )
    with session_scope(factory) as session:
        session.execute(update(DagRun).values(state="success", start_date=now, end_date=now))
        session.execute(update(TaskInstance).values(state="success"))


async def hammer(
    url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def one_user() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                answer = await client.get(url)
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(one_user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
    }


def hammer_with_wrk(
    url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout

    def millis(percentile: str) -> float:
        found = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"wrk printed no {percentile}% latency:\n{out}")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        return round(float(found.group(1)) * scale, 1)

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "requests": requests,
        "errors": int(errors.group(1)) if errors else 0,
        "requests_per_second": round(rate, 1),
        "p50_ms": millis("50"),
        "p99_ms": millis("99"),
    }


class ChangeMaker(threading.Thread):
    """Updates one DAG row ``rate`` times a second until stopped; counts its commits."""

    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.rate, self.count = url, rate, 0
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        from tradewind.db import normalize_url

        dsn = normalize_url(self.url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not self.stopping.wait(1 / self.rate):
                conn.execute(
                    "UPDATE dag SET next_dagrun_run_after = now() WHERE dag_id = %s",
                    [f"bench_{self.count % 200:04d}"],
                )
                self.count += 1


def drive(base: str, args: argparse.Namespace) -> dict[str, Any]:
    """Log in, then load each call in turn; returns the figures per call."""
    import httpx

    login = {"username": "bench", "password": "bench-password"}
    token = httpx.post(f"{base}/auth/token", json=login).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    print(
        f"{os.cpu_count()} cores, {args.workers} uvicorn workers, {args.concurrency} "
        f"requests in flight from {args.generator}, {args.seconds:g} s per call"
    )
    results: dict[str, Any] = {}
    for name, path in (
        ("dags", "/api/v2/dags?limit=100"),
        ("dag_runs", "/api/v2/dags/bench_0007/dagRuns?limit=100"),
    ):
        changes = None
        if args.changes_per_second > 0:
            changes = ChangeMaker(args.postgres, args.changes_per_second)
            changes.start()
        if args.generator == "wrk":
            row = hammer_with_wrk(base + path, headers, args.seconds, args.concurrency)
        else:
            row = asyncio.run(hammer(base + path, headers, args.seconds, args.concurrency))
        if changes is not None:
            changes.stopping.set()
            changes.join()
            row["dag_changes"] = changes.count
        results[name] = {**row, "generator": args.generator}
        print(f"{name:<9} " + "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", required=True, help="a database to reset")
    parser.add_argument("--dags", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--changes-per-second",
        type=float,
        default=0.0,
        metavar="N",
        help="update a DAG row N times a second during each call (default 0)",
    )
    parser.add_argument(
        "--generator",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="the load generator (default: wrk when installed)",
    )
    args = parser.parse_args()

    import httpx

    work = Path(tempfile.mkdtemp(prefix="tw-api-bench-"))
    (work / "dags").mkdir()
    (work / "dags" / "bench.py").write_text(DAG_SOURCE.format(count=args.dags))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(
        TRADEWIND_HOME=str(work / "home"),
        TRADEWIND_DAGS_FOLDER=str(work / "dags"),
        TRADEWIND_DATABASE_URL=args.postgres,
        TRADEWIND_LOG_LEVEL="WARNING",
        TRADEWIND_API_PORT=str(port),
    )
    started = time.perf_counter()
    fill(env, args.dags, args.runs)
    print(f"filled {args.dags} DAGs and {args.runs} runs in {time.perf_counter() - started:.1f} s")
    log = (work / "webserver.log").open("w")
    server = subprocess.Popen(
        ["tradewind", "webserver", "--workers", str(args.workers)],
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/v2/version", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        results = drive(base, args)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"api-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
