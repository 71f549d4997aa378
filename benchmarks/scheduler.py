"""Scheduler + local executor throughput and latency: measures, never asserts.

    python benchmarks/scheduler.py                      # SQLite
    python benchmarks/scheduler.py --postgres URL       # a Postgres database (it is reset)
    python benchmarks/scheduler.py --only chain50,wide200 --parallelism 8
    python benchmarks/scheduler.py --postgres URL --executor celery --broker redis://127.0.0.1:6379/9

With ``--executor celery`` the harness also starts ``--workers`` `tradewind worker`
processes (``--concurrency`` each) on the broker's database, which it flushes first;
their CPU and memory count with the scheduler's.

For each shape a fresh `tradewind scheduler` process tree runs the workload: runs are
created directly in the database, and the time is the span from the first run's
``queued_at`` to the last run's ``end_date`` as the database recorded them. CPU is the
whole scheduler tree's (scheduler, DAG processor, every task process), from
``getrusage`` after it exits: ``cpu_ms_per_task`` counts all of it, start-up included;
``work_cpu_ms_per_task`` only what the tree spent from the workload's start to its exit,
shutdown included. Between the two the tree is left alone for a second after it is
ready; ``idle_cpu_ms`` is what it spent in that second (in all, not per task: mostly the
DAG processor's first pass, which starts when the scheduler does). The tree's CPU at
those moments is read from /proc. Readiness is the job table's view, read by this
process, so no probe's CPU is counted. RSS is sampled from /proc while it works. The
per-role line also shows what the Postgres and Redis servers spent during the workload
(the whole servers: run nothing else against them meanwhile).

Every try of the no-op task appends one line to a file (one write, ``O_APPEND``), and
``tries_run_twice`` counts the task instances that ran more than once; a task instance
that never ran is an error. The same DAG runs under Airflow in `benchmarks/airflow.py`.

The first line says how fast this machine is at what a try costs: a fixed pure-Python
loop, the fork and exit of a 64 MB process (the kernel's share, most of a try's CPU), and
a log folder with one file where the work folders go. Compare figures only between runs
where all three were about alike.

To profile the scheduler itself, replace its command, e.g.
``TRADEWIND_BENCH_SCHEDULER="python -m cProfile -o /tmp/s.prof -m tradewind.cli.main scheduler"``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import ensure_database, free_port  # noqa: E402

SHAPES = {
    "chain50": ("chain", 50, 1),
    "wide200": ("wide", 200, 1),
    "wide1000": ("wide", 1000, 1),
    "runs50x10": ("chain", 10, 50),
}

DAG_SOURCE = """
import os

from tradewind import DAG
from tradewind.operators.python import PythonOperator

def noop(ti):
    # One line per execution, in one appending write: the harness counts them.
    fd = os.open({executions!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{{ti.run_id}} {{ti.task_id}} {{ti.try_number}}\\n".encode())
    finally:
        os.close(fd)

with DAG("{dag_id}", max_active_runs=100, max_active_tasks=1000):
    previous = None
    for i in range({n}):
        current = PythonOperator(task_id=f"t{{i}}", python_callable=noop)
        if "{kind}" == "chain" and previous is not None:
            previous >> current
        previous = current
"""


def loop_seconds() -> float:
    """How long this machine takes for a fixed pure-Python loop (best of three): the
    figures of two machines, or of one machine on two days, compare only with it."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(range(30_000_000))
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def fork_ms(megabytes: int = 64, forks: int = 30) -> float:
    """Milliseconds of CPU (parent and child) to fork a process holding ``megabytes`` of
    written memory and have the child exit at once: the best of three rounds. Every try
    costs a few of these, in the kernel, and the kernel's speed at it moved by a third
    and more within hours on this project's machines while the Python loop's did not."""
    blob = bytearray(megabytes << 20)
    blob[::4096] = b"\x01" * (len(blob) // 4096)  # every page written, so present
    best = float("inf")
    for _ in range(3):
        before = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
        for _ in range(forks):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                os._exit(0)
            os.waitpid(pid, 0)
        after = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
        best = min(best, 1000 * (after - before) / forks)
    del blob
    return round(best, 3)


def cpu_seconds(who: int) -> float:
    """User and system CPU seconds of ``resource.RUSAGE_SELF`` or ``RUSAGE_CHILDREN``."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def log_files_ms(folder: Path, count: int = 200) -> float:
    """Milliseconds of CPU to create a folder with one file in it under ``folder`` (the
    mean of ``count``), as every try does for its log: on some file systems this costs
    twenty times more for some minutes after many files were removed nearby (ext4
    without a journal, as on this project's machines, steps over each recently freed
    inode), and the tries' CPU moves with it. The files stay: removing them would slow
    the next ones down."""
    started = cpu_seconds(resource.RUSAGE_SELF)
    for i in range(count):
        made = folder / f"task_id=t{i}"
        made.mkdir()
        (made / "attempt=1.log").touch()
    return round(1000 * (cpu_seconds(resource.RUSAGE_SELF) - started) / count, 3)


def tree_pids(root: int) -> list[int]:
    pids, pending = [], [root]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    pending.extend(int(c) for c in handle.read().split())
        except OSError:
            continue
    return pids


def tree_cpu_seconds(root: int) -> float:
    """CPU the live tree under ``root`` has used: each process's own plus what it reaped
    (a reaped process is no longer in the tree, so nothing counts twice)."""
    ticks = sum(own + reaped for _, own, reaped in tree_cpu_by_process([root]).values())
    return ticks / os.sysconf("SC_CLK_TCK")


def process_role(pid: int) -> str:
    """What a process is: its name if Tradewind gave it one (``tw-fork-server``,
    ``tw-recorder``, ``tw-try``...), else its command (``tradewind scheduler``)."""
    try:
        with open(f"/proc/{pid}/comm") as handle:
            comm = handle.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().decode(errors="replace").split("\0")
    except OSError:
        return "gone"
    words = [w for w in words[1:] if w and w != "-m"]  # the interpreter and -m
    if comm.startswith("tw-") or len(words) < 2:
        return comm
    program = "tradewind" if "tradewind" in words[0] else Path(words[0]).name
    return f"{program} {words[1]}"


def cpu_ticks(pid: int | str) -> tuple[str, int, int] | None:
    """A live process's name (/proc/PID/comm), its own CPU ticks and those of the
    children it has reaped; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    name, _, rest = stat.partition(" (")[2].rpartition(")")
    fields = rest.split()
    own = int(fields[11]) + int(fields[12])  # utime stime
    return name, own, int(fields[13]) + int(fields[14])  # cutime cstime


def tree_cpu_by_process(roots: list[int]) -> dict[int, tuple[str, int, int]]:
    """For each live process under ``roots``: its role, its own CPU ticks and those of
    the children it has reaped."""
    found = {}
    for pid in (pid for root in roots for pid in tree_pids(root)):
        if (ticks := cpu_ticks(pid)) is not None:
            found[pid] = (process_role(pid), ticks[1], ticks[2])
    return found


def cpu_ms_by_role(
    before: dict[int, tuple[str, int, int]], after: dict[int, tuple[str, int, int]], tasks: int
) -> dict[str, float]:
    """Milliseconds of CPU per task each role spent between two `tree_cpu_by_process`
    snapshots; ``ROLE's children`` is what the children it reaped in between spent (for a
    fork server: its tries). A process that started and was reaped in between counts in
    its parent's children."""
    ticks: dict[str, int] = {}
    for pid, (role, own, reaped) in after.items():
        _, own_before, reaped_before = before.get(pid, (role, 0, 0))
        ticks[role] = ticks.get(role, 0) + own - own_before
        children = f"{role}'s children"
        ticks[children] = ticks.get(children, 0) + reaped - reaped_before
    per_tick = 1000 / os.sysconf("SC_CLK_TCK") / tasks
    return {role: round(n * per_tick, 2) for role, n in sorted(ticks.items()) if n > 0}


def service_cpu_seconds(comm: str) -> float:
    """CPU of every live process named ``comm`` (``postgres``, ``redis-server``), plus
    what they reaped: a Postgres backend that exited counts in the postmaster's
    children. The whole server, so run nothing else against it while measuring."""
    ticks = 0
    for entry in os.listdir("/proc"):
        found = cpu_ticks(entry) if entry.isdigit() else None
        if found is not None and found[0] == comm:
            ticks += found[1] + found[2]
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def prepare_shape(name: str, prefix: str, source: str) -> tuple[Path, Path, Path]:
    """A new work folder for shape ``name``, with the shape's DAG written from ``source``
    (formatted as DAG_SOURCE is): the folder, a home and a DAGs folder inside it. The
    DAG's tries write to `executions_file` of the folder."""
    kind, n, _ = SHAPES[name]
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-{name}-"))
    home, dags = work / "home", work / "dags"
    dags.mkdir(parents=True)
    executions = str(executions_file(work))
    (dags / f"{name}.py").write_text(
        source.format(dag_id=name, n=n, kind=kind, executions=executions)
    )
    return work, home, dags


def executions_file(work: Path) -> Path:
    """Where the no-op tasks of a shape prepared in ``work`` record each execution."""
    return work / "executions.txt"


def tries_run_twice(work: Path, tasks: int) -> int:
    """How many task instances the file of `executions_file` shows running more than
    once. Raises if fewer than ``tasks`` ran at all."""
    try:
        lines = executions_file(work).read_text().splitlines()
    except FileNotFoundError:
        lines = []
    counts: dict[tuple[str, str], int] = {}
    for line in lines:
        run_id, task_id, _ = line.split(" ")
        counts[run_id, task_id] = counts.get((run_id, task_id), 0) + 1
    if len(counts) != tasks:
        raise RuntimeError(f"{len(counts)} of {tasks} task instances recorded an execution")
    return sum(1 for n in counts.values() if n > 1)


def children_cpu_since(before: resource.struct_rusage) -> float:
    """CPU seconds of this process's reaped children since ``before`` was taken."""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def shape_row(tasks: int, span: float, cpu: float) -> dict[str, Any]:
    """The figures every harness reports for a shape: its size, time, rate and CPU."""
    return {
        "tasks": tasks,
        "seconds": round(span, 3),
        "tasks_per_second": round(tasks / span, 1),
        "cpu_ms_per_task": round(1000 * cpu / tasks, 2),
    }


def report(results: dict[str, Any], name: str, row: dict[str, Any], span: float) -> None:
    """Keep and print one shape's figures (with the per-hop latency of one chain)."""
    kind, n, runs = SHAPES[name]
    if kind == "chain" and runs == 1:
        row["per_hop_ms"] = round(1000 * span / n, 1)
    results[name] = row
    print(f"{name:<10} " + "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


@dataclass
class RssSampler:
    roots: list[int]
    peak: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(tree_rss_mb(root) for root in self.roots))
            time.sleep(0.1)

    def stop(self) -> float:
        self._stop.set()
        return self.peak


@dataclass
class CeleryShape:
    broker: str
    workers: int
    concurrency: int


class Harness:
    def __init__(
        self, database_url: str | None, parallelism: int, celery: CeleryShape | None = None
    ) -> None:
        self.database_url = database_url
        self.parallelism = parallelism
        self.celery = celery
        self.results: dict[str, Any] = {}
        # Work folders of the shapes measured, removed by `clean_up` once all are done.
        # Removing each right after its shape made the next shapes' tries slower: on a
        # file system without a journal (this machine's ext4), creating a file steps
        # over every inode freed in the last minutes, and a shape leaves thousands.
        self.leftovers: list[Path] = []
        # The servers the workload uses, whose CPU is reported next to the tree's.
        self.servers = (["postgres"] if database_url else []) + (["redis-server"] if celery else [])

    def env(self, home: Path, dags: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
        env.update(
            TRADEWIND_HOME=str(home),
            TRADEWIND_DAGS_FOLDER=str(dags),
            TRADEWIND_PARALLELISM=str(self.parallelism),
            TRADEWIND_LOG_LEVEL="WARNING",
        )
        if self.database_url:
            env["TRADEWIND_DATABASE_URL"] = self.database_url
        if self.celery is not None:
            env.update(TRADEWIND_EXECUTOR="celery", TRADEWIND_BROKER_URL=self.celery.broker)
        return env

    def _start_workers(self, env: dict[str, str], work: Path) -> list[subprocess.Popen[bytes]]:
        if self.celery is None:
            return []
        import redis

        redis.Redis.from_url(self.celery.broker).flushdb()
        workers = []
        for number in range(self.celery.workers):
            log = (work / f"worker{number}.log").open("w")
            command = ["tradewind", "worker", "--concurrency", str(self.celery.concurrency)]
            command += ["--hostname", f"bench-{number}"]
            workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
        return workers

    def measure(self, name: str) -> None:
        _, n, runs = SHAPES[name]
        work, home, dags = prepare_shape(name, "tw", DAG_SOURCE)
        env = self.env(home, dags)
        os.environ.update(env)
        subprocess.run(
            ["tradewind", "db", "reset", "--yes"], env=env, check=True, capture_output=True
        )
        subprocess.run(
            ["tradewind", "dags", "unpause", name], env=env, check=True, capture_output=True
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        log = (work / "scheduler.log").open("w")
        started = time.perf_counter()
        scheduler = subprocess.Popen(
            os.environ.get("TRADEWIND_BENCH_SCHEDULER", "tradewind scheduler").split(),
            env=env,
            stdout=log,
            stderr=log,
        )
        workers = self._start_workers(env, work)
        roots = [scheduler.pid, *(w.pid for w in workers)]
        sampler = RssSampler(roots)
        sampler.start()
        try:
            self._wait_job()
            if workers:
                self._wait_job("worker", len(workers))
            ready = time.perf_counter() - started
            cpu_at_ready = sum(tree_cpu_seconds(pid) for pid in roots)
            time.sleep(1.0)
            idle_rss = sum(tree_rss_mb(pid) for pid in roots)
            at_start = tree_cpu_by_process(roots)
            cpu_at_start = sum(tree_cpu_seconds(pid) for pid in roots)
            servers_at_start = {comm: service_cpu_seconds(comm) for comm in self.servers}
            span = self._run_workload(name, runs)
            at_end = tree_cpu_by_process(roots)
            servers_at_end = {comm: service_cpu_seconds(comm) for comm in self.servers}
        finally:
            for process in [scheduler, *workers]:
                process.terminate()
            for process in [scheduler, *workers]:
                process.wait(timeout=60)
            log.close()
        peak = sampler.stop()
        cpu = children_cpu_since(before)
        tasks = n * runs
        row = {
            **shape_row(tasks, span, cpu),
            "work_cpu_ms_per_task": round(1000 * (cpu - cpu_at_start) / tasks, 2),
            "idle_cpu_ms": round(1000 * (cpu_at_start - cpu_at_ready)),
            "peak_rss_mb": round(peak, 1),
            "idle_rss_mb": round(idle_rss, 1),
            "scheduler_ready_s": round(ready, 2),
            "tries_run_twice": tries_run_twice(work, tasks),
        }
        report(self.results, name, row, span)
        by_role = cpu_ms_by_role(at_start, at_end, tasks)
        for comm, seconds in servers_at_end.items():
            spent = seconds - servers_at_start[comm]
            by_role[f"{comm} (server)"] = round(1000 * spent / tasks, 2)
        row["workload_cpu_ms_per_task_by_role"] = by_role
        print(" " * 11 + "CPU ms per task: " + ", ".join(f"{k} {v}" for k, v in by_role.items()))
        self.leftovers.append(work)

    def clean_up(self) -> None:
        for work in self.leftovers:
            shutil.rmtree(work, ignore_errors=True)
        self.leftovers.clear()

    def _wait_job(self, job_type: str = "scheduler", count: int = 1) -> None:
        """Wait until ``count`` jobs of ``job_type`` are alive, as `tradewind jobs check`
        sees it, but from this process: the CPU of a probe in a process of its own would
        count as the tree's."""
        from datetime import timedelta

        from tradewind import jobs
        from tradewind.db import make_engine, make_session_factory, read_session
        from tradewind.models.base import utcnow
        from tradewind.settings import get_settings

        settings = get_settings()
        engine = make_engine(settings)
        threshold = timedelta(seconds=settings.job_dead_after_seconds)
        try:
            factory = make_session_factory(engine)
            for _ in range(1200):
                with read_session(factory) as session:
                    alive = jobs.alive_jobs(session, job_type, now=utcnow(), threshold=threshold)
                if len(alive) >= count:
                    return
                time.sleep(0.025)
        finally:
            engine.dispose()
        raise RuntimeError(f"{count} {job_type} job(s) never became alive")

    def _run_workload(self, dag_id: str, runs: int) -> float:
        from sqlalchemy import func, select

        from tradewind.dagruns import RunRequest, create_dag_run, latest_version
        from tradewind.db import make_engine, make_session_factory, session_scope
        from tradewind.models import DagModel, DagRun
        from tradewind.models.base import utcnow
        from tradewind.settings import get_settings
        from tradewind.state import DagRunType

        factory = make_session_factory(make_engine(get_settings()))
        with session_scope(factory) as session:
            model = session.get(DagModel, dag_id)
            version = latest_version(session, dag_id)
            now = utcnow()
            for i in range(runs):
                create_dag_run(
                    session,
                    model,  # type: ignore[arg-type]
                    version,
                    RunRequest(run_type=DagRunType.MANUAL, run_after=now, run_id=f"bench_{i}"),
                    now=now,
                )
        while True:
            with session_scope(factory) as session:
                done = session.scalar(
                    select(func.count()).where(
                        DagRun.dag_id == dag_id, DagRun.state.in_(["success", "failed"])
                    )
                )
                if done == runs:
                    first, last = session.execute(
                        select(func.min(DagRun.queued_at), func.max(DagRun.end_date)).where(
                            DagRun.dag_id == dag_id
                        )
                    ).one()
                    failed = session.scalar(
                        select(func.count()).where(
                            DagRun.dag_id == dag_id, DagRun.state == "failed"
                        )
                    )
                    if failed:
                        raise RuntimeError(f"{failed} run(s) of {dag_id} failed")
                    return (last - first).total_seconds()
            time.sleep(0.05)


def standalone_startup(idle_seconds: float = 0.0) -> tuple[float, float | None]:
    """Seconds from `tradewind standalone` to its scheduler's start (fresh home, SQLite,
    no DAGs); with ``idle_seconds``, also the summed RSS of the whole tree (MB) that
    long after the webserver answers."""
    import httpx

    work = Path(tempfile.mkdtemp(prefix="tw-standalone-"))
    (work / "dags").mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update(
        TRADEWIND_HOME=str(work / "home"),
        TRADEWIND_DAGS_FOLDER=str(work / "dags"),
        TRADEWIND_API_PORT=str(port),
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        ["tradewind", "standalone"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if b"Scheduler started" in line:
                ready = time.perf_counter() - started
                break
        else:
            raise RuntimeError("standalone exited before it was ready")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep it drained
        if not idle_seconds:
            return ready, None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v2/version", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(idle_seconds)
        return ready, tree_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", metavar="URL", help="metadata DB URL (default: SQLite)")
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--only", default=",".join([*SHAPES, "startup"]))
    parser.add_argument("--executor", choices=["local", "celery"], default="local")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9", help="celery: broker URL")
    parser.add_argument("--workers", type=int, default=2, help="celery: worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="celery: tries per worker")
    args = parser.parse_args()
    celery = None
    if args.executor == "celery":
        if not args.postgres:
            parser.error("--executor celery needs --postgres (workers share the database)")
        celery = CeleryShape(args.broker, args.workers, args.concurrency)
    if args.postgres:
        ensure_database(args.postgres)
    harness = Harness(args.postgres, args.parallelism, celery)
    harness.results["loop_seconds"] = loop_seconds()
    files = Path(tempfile.mkdtemp(prefix="tw-files-"))
    harness.leftovers.append(files)
    harness.results["log_files_ms"] = log_files_ms(files)
    harness.results["fork_ms"] = fork_ms()
    shape = f"{args.workers} workers x concurrency {args.concurrency}, " if celery else ""
    print(
        f"{os.cpu_count()} cores, {args.postgres or 'SQLite'}, {args.executor} executor, "
        f"{shape}parallelism {args.parallelism}; "
        f"sum(range(30_000_000)) takes {harness.results['loop_seconds']} s here, "
        f"a log folder and file {harness.results['log_files_ms']} ms in {files.parent}, "
        f"a fork and exit of 64 MB {harness.results['fork_ms']} ms"
    )
    try:
        for name in args.only.split(","):
            if name == "startup":
                first, idle_mb = standalone_startup(idle_seconds=10)
                seconds = min([first, *(standalone_startup()[0] for _ in range(2))])
                harness.results["standalone_ready_s"] = round(seconds, 2)
                harness.results["standalone_idle_rss_mb"] = idle_mb
                print(f"standalone ready in {seconds:.2f} s (best of 3, fresh home, SQLite)")
                print(
                    f"standalone idle: {idle_mb:.0f} MB resident, the whole tree (10 s after ready)"
                )
            else:
                harness.measure(name)
    finally:
        harness.clean_up()
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scheduler-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {"database": args.postgres or "sqlite", "executor": args.executor, **harness.results},
            indent=2,
        )
    )
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
