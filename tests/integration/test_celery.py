"""Celery workers on a real Redis and Postgres: routing, lost workers, a forgetful
broker, duplicate messages and shutdown. Every execution of a task is written to a
side-effect file, so each test can tell how many times each try ran."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import fresh_database
from tests.integration.daemons import (
    Cluster,
    daemon_env,
    pid_alive,
    wait_for,
)
from tests.integration.test_executor_contract import (
    SIDE,
    finished_run,
    instances,
    parse_and_unpause,
)
from tests.integration.test_try_process import children_of
from tradewind.db import session_scope
from tradewind.models import Job, LogChunk, TaskInstance
from tradewind.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def db_url(request: pytest.FixtureRequest, home: Path) -> str:
    return fresh_database("postgres", request, home)


@pytest.fixture
def side(tmp_path: Path) -> Path:
    return tmp_path / "executions.txt"


@pytest.fixture
def broker_url(redis_broker: str) -> str:
    return redis_broker


@pytest.fixture
def cluster(settings: Settings, broker_url: str, tmp_path: Path) -> Iterator[Cluster]:
    env = daemon_env(
        settings,
        TRADEWIND_BROKER_URL=broker_url,
        TRADEWIND_ZOMBIE_THRESHOLD_SECONDS="4",
    )
    cluster = Cluster("celery", env, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def write(folder: Path, name: str, side: Path, source: str) -> None:
    (folder / name).write_text(SIDE.format(side=str(side)) + textwrap.dedent(source))


def executions(side: Path) -> list[str]:
    return side.read_text().splitlines() if side.exists() else []


def inside_first_try(factory: sessionmaker[Session], side: Path) -> TaskInstance | None:
    """Sleeper's first try once its callable has begun. The worker records `running`
    before the callable starts, so a test that waited for the state alone could stop the
    try before it marked its execution, and then find one execution too few."""
    ti = instances(factory, "sleeper").get(("work", -1))
    if ti is None or ti.state != "running":
        return None
    return ti if any(line.startswith("work try 1 ") for line in executions(side)) else None


SLEEPER = """
import time
from datetime import timedelta
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def work(ti):
    mark(f"work try {{ti.try_number}} on {{ti.hostname}}")
    if ti.try_number == 1:
        time.sleep({first_try_seconds})

with DAG("sleeper"):
    PythonOperator(task_id="work", python_callable=work, retries={retries},
                   retry_delay=timedelta(seconds=0))
"""


def test_two_workers_on_two_queues_run_the_example_dags_green(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tradewind.models import DagRun
    from tradewind.settings import get_settings

    examples = Path(__file__).resolve().parents[2] / "dags"
    for example in examples.glob("*.py"):
        (dags_folder / example.name).write_text(example.read_text())
    write(
        dags_folder,
        "routed.py",
        side,
        """
from tradewind import DAG, task

with DAG("routed"):
    @task
    def here():
        return 1

    @task(queue="second")
    def there(value):
        mark(f"there {value}")

    there(here())
""",
    )
    settings = get_settings()
    dag_ids = ["ml_training_pipeline", "segment_training", "partition_features"]
    dag_ids += ["bash_and_templates", "routed"]
    parse_and_unpause(session_factory, settings, *dag_ids)
    cluster.worker("worker-default", queues="default")
    cluster.worker("worker-second", queues="second")
    cluster.scheduler()
    for dag_id in dag_ids:
        cluster.trigger(dag_id, "-r", "example")

    def finished() -> list[DagRun]:
        with session_factory() as session:
            runs = list(session.scalars(select(DagRun).where(DagRun.run_id == "example")))
        done = len(runs) == len(dag_ids) and all(r.state in ("success", "failed") for r in runs)
        return runs if done else []

    runs = wait_for(finished, "the example runs", timeout=180)
    assert {r.dag_id: r.state for r in runs} == dict.fromkeys(dag_ids, "success"), cluster.output()
    routed = instances(session_factory, "routed")
    assert routed[("there", -1)].hostname == "worker-second"
    assert routed[("here", -1)].hostname == "worker-default"
    assert executions(side) == ["there 1"]


def test_a_killed_worker_s_try_is_a_zombie_and_is_retried_on_the_other_worker(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(dags_folder, "sleeper.py", side, SLEEPER.format(first_try_seconds=300, retries=1))
    parse_and_unpause(session_factory, settings, "sleeper")
    workers = {name: cluster.worker(name) for name in ("worker-a", "worker-b")}
    cluster.scheduler()
    cluster.trigger("sleeper")
    first = wait_for(lambda: inside_first_try(session_factory, side), "the first try")
    # The worker's machine is lost: everything dies at once, the try with no chance to
    # record anything. The try and then the worker with its fork server are frozen, and
    # the try is killed before them: had the fork server died first, the kernel would
    # have resumed the stopped try (SIGCONT to a process group that its parent's death
    # orphans), and the try would have handled its parent-death SIGTERM and recorded
    # its end before the SIGKILL came (under nohup, the SIGHUP sent with it is ignored).
    worker = workers[first.hostname]
    os.killpg(first.pid, signal.SIGSTOP)
    os.killpg(worker.process.pid, signal.SIGSTOP)
    os.killpg(first.pid, signal.SIGKILL)
    worker.kill()
    wait_for(lambda: not pid_alive(first.pid), "the try to die with its worker")
    run = finished_run(session_factory, "sleeper", cluster)
    assert run.state == "success", cluster.output()
    survivor = next(name for name in workers if name != first.hostname)
    assert executions(side) == [f"work try 1 on {first.hostname}", f"work try 2 on {survivor}"]
    with session_factory() as session:
        notes = "".join(session.scalars(select(LogChunk.content).where(LogChunk.try_number == 1)))
    # On failure, say who ended try 1 and how: its log, and every process's output.
    assert "(zombie)" in notes, f"try 1 ({first.pid}) log:\n{notes}\n{cluster.output()}"


def test_a_try_whose_worker_is_killed_stops_and_is_handed_back(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    """Only the worker's processes die (the OOM killer, kill -9 of the worker): its try
    learns its parent died, stops as interrupted, and runs again elsewhere at once."""
    write(dags_folder, "sleeper.py", side, SLEEPER.format(first_try_seconds=300, retries=0))
    parse_and_unpause(session_factory, settings, "sleeper")
    workers = {name: cluster.worker(name) for name in ("worker-a", "worker-b")}
    cluster.scheduler()
    cluster.trigger("sleeper")
    first = wait_for(lambda: inside_first_try(session_factory, side), "the first try")
    workers[first.hostname].kill()  # the try is in a process group of its own
    wait_for(lambda: not pid_alive(first.pid), "the orphaned try to stop")
    run = finished_run(session_factory, "sleeper", cluster)
    assert run.state == "success", cluster.output()
    survivor = next(name for name in workers if name != first.hostname)
    assert executions(side) == [f"work try 1 on {first.hostname}", f"work try 2 on {survivor}"]


def fork_server_of(worker_pid: int) -> int | None:
    """The pid of the worker's spawned fork server (a child running worker.fork_server)."""
    for pid in children_of(worker_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"worker.fork_server" in handle.read():
                    return pid
        except OSError:
            continue
    return None


def test_a_worker_whose_fork_server_dies_starts_another_and_its_try_runs_again(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(dags_folder, "sleeper.py", side, SLEEPER.format(first_try_seconds=300, retries=1))
    parse_and_unpause(session_factory, settings, "sleeper")
    worker = cluster.worker("worker-a")
    cluster.scheduler()
    cluster.trigger("sleeper")
    first = wait_for(lambda: inside_first_try(session_factory, side), "the first try")
    server = fork_server_of(worker.pid)
    assert server is not None
    os.kill(server, signal.SIGKILL)
    # The try ends with its server (it stops as interrupted); the worker carries on with
    # a new server, which runs the second try.
    wait_for(lambda: not pid_alive(first.pid), "the try to end with its server")
    run = finished_run(session_factory, "sleeper", cluster)
    assert run.state == "success", cluster.output()
    assert executions(side) == ["work try 1 on worker-a", "work try 2 on worker-a"]
    assert worker.process.poll() is None
    assert fork_server_of(worker.pid) not in (None, server)
    assert "starting a new one" in worker.output()


def test_tries_beyond_the_workers_capacity_wait_as_scheduled_not_in_redis(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    """With one slot among the workers and a short task_queued_timeout, tries that must
    wait for the slot wait unqueued: none is sent again or failed as stuck."""
    write(
        dags_folder,
        "queue_up.py",
        side,
        """
import time
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def work(ti):
    mark(f"{ti.task_id} try {ti.try_number}")
    time.sleep(3)

with DAG("queue_up"):
    for i in range(3):
        PythonOperator(task_id=f"t{i}", python_callable=work)
""",
    )
    parse_and_unpause(session_factory, settings, "queue_up")
    worker = cluster.worker("worker-a", concurrency=1)
    wait_for(lambda: "ready" in worker.output(), "the worker to be ready")
    cluster.start(
        ["scheduler", "--no-dag-processor"], "scheduler", TRADEWIND_TASK_QUEUED_TIMEOUT_SECONDS="2"
    )
    cluster.trigger("queue_up")
    run = finished_run(session_factory, "queue_up", cluster)
    assert run.state == "success", cluster.output()
    assert sorted(executions(side)) == ["t0 try 1", "t1 try 1", "t2 try 1"]
    assert "sending it again" not in cluster.output()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    """A redis-server of this test's own, which it may stop and start again."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def messages_waiting(self) -> int:
        """Messages in this Redis's queues (Celery keeps each queue as a list)."""
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        try:
            lists = [k for k in client.keys("*") if client.type(k) == b"list"]
            return sum(int(client.llen(k)) for k in lists)
        finally:
            client.close()

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), "our redis-server to answer", timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _pings(client: object) -> bool:
    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except Exception:
        return False


def test_tries_forgotten_by_a_restarted_redis_are_sent_again_and_run_once(
    settings: Settings,
    dags_folder: Path,
    session_factory: sessionmaker[Session],
    side: Path,
    tmp_path: Path,
) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    env = daemon_env(
        settings, TRADEWIND_BROKER_URL=own.url, TRADEWIND_TASK_QUEUED_TIMEOUT_SECONDS="6"
    )
    cluster = Cluster("celery", env, tmp_path)
    try:
        write(
            dags_folder,
            "fanout.py",
            side,
            """
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def work(ti):
    mark(f"{ti.task_id} try {ti.try_number}")

with DAG("fanout"):
    for i in range(3):
        PythonOperator(task_id=f"t{i}", python_callable=work)
""",
        )
        parse_and_unpause(session_factory, settings, "fanout")
        cluster.scheduler()  # no worker yet: the messages wait in Redis
        cluster.trigger("fanout")
        wait_for(
            lambda: {t.state for t in instances(session_factory, "fanout").values()} == {"queued"},
            "the tries to be queued",
        )
        # The state says queued just before the messages are sent: wait until Redis holds
        # all three, or a send retried after the restart would leave nothing to lose.
        wait_for(lambda: own.messages_waiting() == 3, "the three messages to be in Redis")
        own.stop()  # Redis keeps nothing on disk: the queued messages are gone
        own.start()
        cluster.worker("worker-a")
        run = finished_run(session_factory, "fanout", cluster)
        assert run.state == "success", cluster.output()
        assert sorted(executions(side)) == ["t0 try 1", "t1 try 1", "t2 try 1"]
        assert "sending it again" in cluster.output()
    finally:
        cluster.stop()
        own.stop()


def test_the_same_message_delivered_twice_runs_the_try_once(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
    broker_url: str,
) -> None:
    from scheduler.run_driver import advance_run, queue_instance
    from tradewind.dagruns import RunRequest, create_dag_run, latest_version
    from tradewind.models import DagModel
    from tradewind.models.base import utcnow
    from tradewind.state import DagRunType
    from worker.celery_app import RUN_TRY, make_app, try_message

    write(dags_folder, "sleeper.py", side, SLEEPER.format(first_try_seconds=1, retries=0))
    parse_and_unpause(session_factory, settings, "sleeper")
    with session_scope(session_factory) as session:
        now = utcnow()
        model = session.get(DagModel, "sleeper")
        assert model is not None
        run = create_dag_run(
            session,
            model,
            latest_version(session, "sleeper"),
            RunRequest(run_type=DagRunType.MANUAL, run_after=now, run_id="twice"),
            now=now,
        )
        (ti,) = advance_run(session, run, now=now).scheduled
        request = queue_instance(session, ti, now)
    worker = cluster.worker("worker-a", concurrency=2)
    app = make_app(settings.model_copy(update={"broker_url": broker_url}))
    for _ in range(2):
        app.send_task(RUN_TRY, args=try_message(request), queue="default")
    wait_for(
        lambda: instances(session_factory, "sleeper")[("work", -1)].state == "success",
        "the try to succeed",
    )
    wait_for(lambda: "duplicate or late delivery" in worker.output(), "the duplicate's drop")
    assert executions(side) == ["work try 1 on worker-a"]


def test_sigterm_lets_a_running_try_finish_within_the_grace_period(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(dags_folder, "sleeper.py", side, SLEEPER.format(first_try_seconds=3, retries=0))
    parse_and_unpause(session_factory, settings, "sleeper")
    worker = cluster.start(
        ["worker", "--hostname", "worker-a"], "worker-a", TRADEWIND_SHUTDOWN_GRACE_SECONDS="60"
    )
    cluster.scheduler()
    cluster.trigger("sleeper")
    wait_for(lambda: inside_first_try(session_factory, side), "the try to run")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=60) == 0
    ti = instances(session_factory, "sleeper")[("work", -1)]
    assert (ti.state, ti.try_number) == ("success", 1), worker.output()
    assert executions(side) == ["work try 1 on worker-a"]


def test_sigterm_after_the_grace_period_hands_the_try_back_for_another_try(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(dags_folder, "sleeper.py", side, SLEEPER.format(first_try_seconds=300, retries=0))
    parse_and_unpause(session_factory, settings, "sleeper")
    first = cluster.start(
        ["worker", "--hostname", "worker-a"], "worker-a", TRADEWIND_SHUTDOWN_GRACE_SECONDS="1"
    )
    cluster.scheduler()
    cluster.trigger("sleeper")
    wait_for(lambda: inside_first_try(session_factory, side), "the try to run")
    started = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=60) == 0
    assert time.monotonic() - started < 60
    cluster.worker("worker-b")
    run = finished_run(session_factory, "sleeper", cluster)
    assert run.state == "success", cluster.output()
    assert executions(side) == ["work try 1 on worker-a", "work try 2 on worker-b"]
    with session_factory() as session:
        from tradewind.models import TaskInstanceHistory

        (earlier,) = session.scalars(select(TaskInstanceHistory))
    assert (earlier.try_number, earlier.state) == (1, "up_for_retry")


def test_a_try_for_a_queue_without_workers_says_why_it_waits(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    write(
        dags_folder,
        "stranded.py",
        side,
        """
from tradewind import DAG
from tradewind.operators.python import PythonOperator

with DAG("stranded"):
    PythonOperator(task_id="waits", python_callable=lambda: None, queue="nowhere")
""",
    )
    parse_and_unpause(session_factory, settings, "stranded")
    cluster.worker("worker-a")
    wait_for(lambda: "ready" in cluster.output(), "the worker to be ready")
    cluster.scheduler()
    cluster.trigger("stranded")
    ti = wait_for(
        lambda: next(
            (t for t in instances(session_factory, "stranded").values() if t.queued_reason), None
        ),
        "a reason on the stranded try",
    )
    assert ti.state == "queued"
    assert "queue 'nowhere'" in ti.queued_reason
    assert "tradewind worker --queues nowhere" in ti.queued_reason


def test_a_worker_started_after_the_scheduler_looked_is_not_reported_missing(
    cluster: Cluster,
    dags_folder: Path,
    settings: Settings,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    """The scheduler caches what it knows of the workers; a worker that started since
    must not have its tries marked as waiting for one (nor the log say so)."""
    write(
        dags_folder,
        "late.py",
        side,
        """
from tradewind import DAG
from tradewind.operators.python import PythonOperator

with DAG("late"):
    PythonOperator(task_id="work", python_callable=lambda: mark("work"))
""",
    )
    parse_and_unpause(session_factory, settings, "late")
    scheduler = cluster.scheduler()
    wait_for(lambda: job_running(session_factory, "scheduler", scheduler.process.pid), "passes")
    cluster.worker("worker-a")
    wait_for(lambda: "ready" in cluster.output(), "the worker to be ready")
    cluster.trigger("late")
    run = finished_run(session_factory, "late", cluster)
    assert run.state == "success", cluster.output()
    assert executions(side) == ["work"]
    assert "No alive worker" not in cluster.output()


def job_running(factory: sessionmaker[Session], job_type: str, pid: int) -> bool:
    with session_scope(factory) as session:
        return (
            session.scalar(
                select(Job.id).where(
                    Job.job_type == job_type, Job.pid == pid, Job.state == "running"
                )
            )
            is not None
        )


def test_a_worker_refuses_an_sqlite_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env["TRADEWIND_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        ["tradewind", "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "TRADEWIND_DATABASE_URL" in result.stderr
    assert "SQLite" in result.stderr
