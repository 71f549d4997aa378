"""The cost of one try's forked child, measured without a scheduler or a broker.

    python benchmarks/try_child.py                      # SQLite
    python benchmarks/try_child.py --postgres URL       # a Postgres database (it is reset)
    python benchmarks/try_child.py --tries 200 --width 1000 --profile /tmp/child-prof

A DAG of ``--width`` independent no-op tasks is parsed and one run is created; the
harness then becomes a warm parent (as a fork server is)
and forks ``--tries`` tries one after another, each set to queued just before its fork.
It reports the wall time per try (fork to reaped), the CPU of the children (from
``getrusage``), the parent's own CPU, and the CPU the database server spent (Postgres
only, from its backends' /proc entries, so the cost of each child's new connection
shows). With ``--profile DIR`` every child runs its try under cProfile and writes
``DIR/<pid>.prof``; the harness prints the summed top functions.

This is the floor under every executor: the scheduler benchmark's CPU per task is this
figure plus the scheduling and the broker.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import ensure_database  # noqa: E402
from benchmarks.scheduler import DAG_SOURCE, loop_seconds, service_cpu_seconds  # noqa: E402


def prepare(work: Path, database_url: str | None, width: int) -> None:
    dags = work / "dags"
    dags.mkdir(parents=True)
    executions = str(work / "executions.txt")
    source = DAG_SOURCE.format(dag_id="wide", n=width, kind="wide", executions=executions)
    (dags / "wide.py").write_text(source)
    os.environ.update(
        TRADEWIND_HOME=str(work / "home"),
        TRADEWIND_DAGS_FOLDER=str(dags),
        TRADEWIND_LOG_LEVEL="WARNING",
    )
    if database_url:
        ensure_database(database_url)
        os.environ["TRADEWIND_DATABASE_URL"] = database_url
    for command in (["db", "reset", "--yes"], ["dags", "reserialize"]):
        subprocess.run(["tradewind", *command], check=True, capture_output=True)


def create_run() -> tuple[str, list[str]]:
    from sqlalchemy import select

    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.db import make_engine, make_session_factory, session_scope
    from tradewind.models import DagModel, TaskInstance
    from tradewind.models.base import utcnow
    from tradewind.settings import get_settings
    from tradewind.state import DagRunType

    factory = make_session_factory(make_engine(get_settings()))
    with session_scope(factory) as session:
        model = session.get(DagModel, "wide")
        version = latest_version(session, "wide")
        now = utcnow()
        run = create_dag_run(
            session,
            model,  # type: ignore[arg-type]
            version,
            RunRequest(run_type=DagRunType.MANUAL, run_after=now, run_id="bench"),
            now=now,
        )
        run_id = run.run_id
        task_ids = sorted(
            session.scalars(select(TaskInstance.task_id).where(TaskInstance.run_id == run_id))
        )
    return run_id, task_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="metadata DB URL (default: SQLite)")
    parser.add_argument("--tries", type=int, default=100)
    parser.add_argument("--width", type=int, default=1000, help="tasks in the DAG")
    parser.add_argument("--profile", metavar="DIR", help="cProfile each child into DIR")
    parser.add_argument(
        "--die-with-parent", action="store_true", help="as a Celery worker's fork server forks"
    )
    parser.add_argument(
        "--no-standby", action="store_true", help="fork each child when its try comes"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tw-try-child-"))
    prepare(work, args.postgres, args.width)
    run_id, task_ids = create_run()
    if args.profile:
        profile_children(Path(args.profile))
    tries = min(args.tries, len(task_ids))
    figures, faults, done = fork_tries(
        run_id, task_ids[:tries], (args.die_with_parent, not args.no_standby), args.postgres
    )
    where = args.postgres or "SQLite"
    print(f"{tries} tries ({done} success) of a {args.width}-task DAG on {where}:")
    print(f"  (sum(range(30_000_000)) takes {loop_seconds()} s here)")
    for name, seconds in figures.items():
        print(f"  {name:<20}{1000 * seconds / tries:7.2f} ms")
    print(f"  {'page faults':<20}{faults / tries:7.0f} per child (minor; each one a page copied")
    print(f"  {'':<20}        or mapped: copy-on-write, a new heap page, a file page)")
    if args.profile:
        summarize(Path(args.profile))


def fork_tries(
    run_id: str, task_ids: list[str], options: tuple[bool, bool], postgres: str | None
) -> tuple[dict[str, float], int, int]:
    """Fork one try per task, one after another; the summed figures, the children's
    summed minor page faults, and how many of the tries succeeded."""
    from sqlalchemy import select, update

    from tradewind.db import session_scope
    from tradewind.models import TaskInstance
    from tradewind.settings import get_settings
    from worker.task_runner import TryRequest
    from worker.try_process import WarmParent, fork_try

    die_with_parent, standby = options
    parent = WarmParent.prepare(get_settings(), die_with_parent=die_with_parent)
    parent.standby = standby
    figures = dict.fromkeys(
        ["wall per try", "fork in the parent", "CPU of a child", "  of it in the kernel"]
        + ["CPU of the parent"]
        + (["CPU of Postgres"] if postgres else []),
        0.0,
    )
    faults = 0
    for task_id in task_ids:
        with session_scope(parent.factory) as session:
            session.execute(
                update(TaskInstance)
                .where(TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
                .values(state="queued", try_number=1)
            )
        request = TryRequest("wide", run_id, task_id, -1, 1)
        time.sleep(0.05)  # as between tries: a standby gets warm meanwhile
        mine = resource.getrusage(resource.RUSAGE_SELF)
        theirs = resource.getrusage(resource.RUSAGE_CHILDREN)
        db_before = service_cpu_seconds("postgres") if postgres else 0.0
        started = time.perf_counter()
        child = fork_try(parent, request, fileloc=parent.fileloc_of("wide"))
        figures["fork in the parent"] += time.perf_counter() - started  # and the next standby
        _, status = os.waitpid(child.pid, 0)
        child.reaped(status)
        figures["wall per try"] += time.perf_counter() - started
        os.close(child.fd)
        if status != 0:
            raise RuntimeError(f"the child of {request} ended with status {status}")
        figures["CPU of the parent"] += cpu(resource.getrusage(resource.RUSAGE_SELF)) - cpu(mine)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures["CPU of a child"] += cpu(after) - cpu(theirs)
        figures["  of it in the kernel"] += after.ru_stime - theirs.ru_stime
        faults += after.ru_minflt - theirs.ru_minflt
        if postgres:
            time.sleep(0.02)  # a closed connection's backend has exited by now
            figures["CPU of Postgres"] += service_cpu_seconds("postgres") - db_before
    parent.close()
    with session_scope(parent.factory) as session:
        states = session.scalars(
            select(TaskInstance.state).where(TaskInstance.run_id == run_id)
        ).all()
    return figures, faults, sum(1 for state in states if state == "success")


def cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def profile_children(directory: Path) -> None:
    """Wrap TaskRunner.run so that each child profiles its try."""
    import cProfile

    from worker import task_runner

    directory.mkdir(parents=True, exist_ok=True)
    original = task_runner.TaskRunner.run

    def profiled(
        self: task_runner.TaskRunner,
        request: task_runner.TryRequest,
        claim: task_runner.Claim | None = None,
    ) -> task_runner.TryResult:
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(original, self, request, claim)
        finally:
            profiler.dump_stats(str(directory / f"{os.getpid()}.prof"))

    task_runner.TaskRunner.run = profiled  # type: ignore[method-assign]


def summarize(directory: Path) -> None:
    import pstats

    files = sorted(directory.glob("*.prof"))
    if not files:
        return
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
