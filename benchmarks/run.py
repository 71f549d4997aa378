"""Tradewind's performance harness: measures, never asserts.

    python benchmarks/run.py                 # everything, SQLite
    python benchmarks/run.py --postgres URL  # the same against a Postgres database
    python benchmarks/run.py --only import,parse

Prints one line per figure (median of several runs where cheap) and writes them as
JSON to benchmarks/results/<timestamp>.json. Every measured process is a whole
`python`/`tradewind` process, as a user would run it.
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

CHAIN_DAG = """
from tradewind import DAG
from tradewind.operators.empty import EmptyOperator
from tradewind.operators.python import PythonOperator

def noop():
    return None

with DAG("{dag_id}"):
    previous = None
    for i in range({n}):
        current = PythonOperator(task_id=f"t{{i}}", python_callable=noop)
        if previous is not None:
            previous >> current
        previous = current
"""

WIDE_DAG = """
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def noop():
    return None

with DAG("{dag_id}"):
    for i in range({n}):
        PythonOperator(task_id=f"t{{i}}", python_callable=noop)
"""

PARSE_DAG = """
from datetime import datetime
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def noop():
    return None

with DAG("generated_{i}", schedule="@daily", start_date=datetime(2024, 1, 1), tags=["bench"]):
    previous = None
    for t in range(10):
        current = PythonOperator(task_id=f"task_{{t}}", python_callable=noop)
        if previous is not None:
            previous >> current
        previous = current
"""


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


class Bench:
    def __init__(self, workdir: Path, database_url: str | None) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.results: dict[str, float] = {}

    def env(self, home: Path, dags: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
        env.update(TRADEWIND_HOME=str(home), TRADEWIND_DAGS_FOLDER=str(dags))
        if self.database_url:
            env["TRADEWIND_DATABASE_URL"] = self.database_url
        return env

    def record(self, name: str, seconds: float, note: str = "") -> None:
        self.results[name] = round(seconds, 4)
        print(f"{name:<44} {seconds:8.3f} s  {note}", flush=True)

    def fresh(self, name: str) -> tuple[Path, Path]:
        home, dags = self.workdir / name / "home", self.workdir / name / "dags"
        shutil.rmtree(self.workdir / name, ignore_errors=True)
        dags.mkdir(parents=True)
        if self.database_url:
            subprocess.run(
                ["tradewind", "db", "reset", "--yes"],
                env=self.env(home, dags),
                check=True,
                capture_output=True,
            )
        return home, dags

    # --- the figures -------------------------------------------------------------------

    def import_time(self) -> None:
        env = self.env(self.workdir, self.workdir)
        for label, code in (
            ("import tradewind", "import tradewind"),
            ("import DAG, task (what a DAG file does)", "from tradewind import DAG, task"),
        ):
            seconds = median_of(
                15, lambda code=code: timed([sys.executable, "-c", code], env, self.workdir)
            )
            self.record(label, seconds, "(median of 15)")
        baseline = median_of(15, lambda: timed([sys.executable, "-c", "pass"], env, self.workdir))
        self.record("python -c pass (interpreter start-up)", baseline, "(median of 15)")

    def parse(self, files: int = 1000) -> None:
        home, dags = self.fresh("parse")
        for i in range(files):
            (dags / f"generated_{i:04d}.py").write_text(PARSE_DAG.format(i=i))
        env = self.env(home, dags)
        if not self.database_url:
            subprocess.run(["tradewind", "db", "migrate"], env=env, check=True, capture_output=True)
        cold = timed(["tradewind", "dags", "reserialize"], env, self.workdir)
        self.record(f"parse {files} files x 10 tasks, cold", cold, "(empty DB: all stored)")
        warm = timed(["tradewind", "dags", "reserialize"], env, self.workdir)
        self.record(f"parse {files} files x 10 tasks, warm", warm, "(all re-parsed, no change)")
        scan = timed(["tradewind", "dags", "list", "-o", "plain"], env, self.workdir)
        self.record(f"dags list over {files} unchanged files", scan, "(change check only)")

    def dags_test(self) -> None:
        for name, template, n in (("chain50", CHAIN_DAG, 50), ("wide200", WIDE_DAG, 200)):
            home, dags = self.fresh(name)
            (dags / f"{name}.py").write_text(template.format(dag_id=name, n=n))
            env = self.env(home, dags)
            if not self.database_url:
                subprocess.run(
                    ["tradewind", "db", "migrate"], env=env, check=True, capture_output=True
                )
            seconds = median_of(
                3,
                lambda name=name, env=env: timed(
                    ["tradewind", "dags", "test", name, "-o", "plain"], env, self.workdir
                ),
            )
            self.record(
                f"tradewind dags test {name}", seconds, f"(whole process, median of 3; {n} tasks)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", help="metadata DB URL (default: SQLite)")
    parser.add_argument("--only", default="import,parse,dags_test", help="comma-separated figures")
    parser.add_argument("--files", type=int, default=1000, help="DAG files for the parse figure")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tradewind-bench-"))
    bench = Bench(workdir, args.postgres)
    print(f"Tradewind benchmarks on {os.cpu_count()} cores, database: {args.postgres or 'SQLite'}")
    try:
        for name in args.only.split(","):
            if name == "parse":
                bench.parse(args.files)
            else:
                getattr(bench, {"import": "import_time"}.get(name, name))()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"database": args.postgres or "sqlite", **bench.results}, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
