"""Forking tries from a warm parent (`worker.try_process`): the standby child, and the
local executor's fork server (`worker.fork_server`).

A parent keeps one child forked ahead of the next try. It must run exactly the try it
is handed, never one of a DAG file the parent loaded after forking it, and end without
running anything when it is discarded or has waited too long. The fork server reports
every try's end and exit; it goes when its scheduler goes, without taking the tries
with it, and the executor carries on when it dies. A Celery worker's spawned server
tells each of its connections of the children that connection asked for, and ends, with
its tries, when the worker's connections close.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.executors.local import LocalExecutor
from tests.integration.daemons import pid_alive, wait_for
from tests.integration.test_scheduler import parse_and_unpause
from tradewind.dagruns import RunRequest, create_dag_run, latest_version
from tradewind.db import session_scope
from tradewind.models import DagModel, TaskInstance
from tradewind.models.base import utcnow
from tradewind.settings import Settings
from tradewind.state import DagRunType
from worker import try_process
from worker.fork_server import ForkServer, ForkServerGone, SpawnedForkServer
from worker.task_runner import TryRequest
from worker.try_process import (
    ORPHAN_GRACE_SECONDS,
    TryProcess,
    WarmParent,
    fork_try,
    stop_group,
)

pytestmark = pytest.mark.integration

DAG_SOURCE = """
from pathlib import Path
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def mark(ti):
    with Path({side!r}).open("a") as f:
        f.write(f"{{ti.dag_id}}.{{ti.task_id}}\\n")

with DAG({dag_id!r}):
    for i in range(3):
        PythonOperator(task_id=f"t{{i}}", python_callable=mark)
"""


@pytest.fixture
def parent(settings: Settings) -> Iterator[WarmParent]:
    parent = WarmParent.prepare(settings)
    yield parent
    parent.close()
    gc.unfreeze()  # prepare() froze this test process's heap


@pytest.fixture
def side(tmp_path: Path) -> Path:
    return tmp_path / "executions.txt"


@pytest.fixture
def queued_runs(
    settings: Settings, session_factory: sessionmaker[Session], dags_folder: Path, side: Path
) -> dict[str, str]:
    """DAGs "one" and "two" (three tasks each, every execution noted in ``side``),
    each with a run whose instances are queued: the run id of each."""
    for dag_id in ("one", "two"):
        source = DAG_SOURCE.format(dag_id=dag_id, side=str(side))
        (dags_folder / f"{dag_id}.py").write_text(textwrap.dedent(source))
    parse_and_unpause(session_factory, settings, "one", "two")
    return {dag_id: queued_run(session_factory, dag_id) for dag_id in ("one", "two")}


def queued_run(factory: sessionmaker[Session], dag_id: str) -> str:
    """A run of ``dag_id`` whose task instances are all queued at try 1."""
    with session_scope(factory) as session:
        run = create_dag_run(
            session,
            session.get(DagModel, dag_id),  # type: ignore[arg-type]
            latest_version(session, dag_id),
            RunRequest(run_type=DagRunType.MANUAL, run_after=utcnow(), run_id="r"),
            now=utcnow(),
        )
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == dag_id)
            .values(state="queued", try_number=1)
        )
        return run.run_id


def run_to_end(parent: WarmParent, dag_id: str, run_id: str, task_id: str) -> TryProcess:
    started = fork_try(
        parent, TryRequest(dag_id, run_id, task_id, -1, 1), fileloc=parent.fileloc_of(dag_id)
    )
    _, status = os.waitpid(started.pid, 0)
    started.reaped(status)
    os.close(started.fd)
    assert status == 0
    return started


def states(factory: sessionmaker[Session], dag_id: str) -> dict[str, str | None]:
    with session_scope(factory) as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(TaskInstance.dag_id == dag_id)
        )
        return dict(rows.all())  # type: ignore[arg-type]


def test_a_newly_loaded_dag_file_is_collapsed_into_huge_pages_only_when_asked(
    parent: WarmParent,
    queued_runs: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not on the way of the tries that follow the load (the fork server asks once it
    has been idle a moment)."""
    collapses: list[int] = []
    monkeypatch.setattr(
        try_process, "collapse_heap_into_huge_pages", lambda: collapses.append(1) or 0
    )
    assert not parent.collapse_due
    run_to_end(parent, "one", queued_runs["one"], "t0")  # loads one.py, then refills
    run_to_end(parent, "one", queued_runs["one"], "t1")
    assert parent.collapse_due
    assert collapses == []
    parent.collapse_if_due()
    parent.collapse_if_due()
    assert not parent.collapse_due
    assert collapses == [1]


def test_the_standby_runs_the_next_try_and_only_that(
    parent: WarmParent,
    queued_runs: dict[str, str],
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    run_id = queued_runs["one"]

    run_to_end(parent, "one", run_id, "t0")
    standby = parent.standby_pid
    assert standby is not None
    second = run_to_end(parent, "one", run_id, "t1")
    assert second.pid == standby
    assert parent.standby_pid not in (None, standby)  # the next one is ready

    assert side.read_text().splitlines() == ["one.t0", "one.t1"]
    assert states(session_factory, "one") == {"t0": "success", "t1": "success", "t2": "queued"}


def test_a_standby_forked_before_a_dag_file_was_loaded_is_not_used(
    parent: WarmParent, queued_runs: dict[str, str], side: Path
) -> None:
    run_one, run_two = queued_runs["one"], queued_runs["two"]

    run_to_end(parent, "one", run_one, "t0")
    stale = parent.standby_pid
    assert stale is not None
    started = run_to_end(parent, "two", run_two, "t0")  # loads two.py in the parent first
    assert started.pid != stale
    assert not pid_alive(stale)  # discarded and reaped
    assert side.read_text().splitlines() == ["one.t0", "two.t0"]


def test_a_discarded_or_expired_standby_ends_without_running_anything(
    parent: WarmParent,
    queued_runs: dict[str, str],
    session_factory: sessionmaker[Session],
    side: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = queued_runs["one"]
    run_to_end(parent, "one", run_id, "t0")

    first = parent.standby_pid
    assert first is not None
    parent.close()
    assert parent.standby_pid is None
    assert not pid_alive(first)

    run_to_end(parent, "one", run_id, "t1")
    second = parent.standby_pid
    assert second is not None
    parent.expire_standby()  # it has not waited long enough yet
    assert parent.standby_pid == second
    monkeypatch.setattr(try_process, "STANDBY_IDLE_SECONDS", 0.0)
    parent.expire_standby()
    assert parent.standby_pid is None
    assert not pid_alive(second)

    assert side.read_text().splitlines() == ["one.t0", "one.t1"]
    assert states(session_factory, "one")["t2"] == "queued"


def test_a_standby_that_hangs_getting_warm_is_killed_when_discarded(
    parent: WarmParent, queued_runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if its database stopped answering: the parent must not wait on it for long.
    monkeypatch.setattr(try_process, "_touch_the_database", lambda *_: time.sleep(600))
    monkeypatch.setattr(try_process, "STANDBY_EXIT_SECONDS", 0.2)
    run_to_end(parent, "one", queued_runs["one"], "t0")  # forks the hanging standby
    stuck = parent.standby_pid
    assert stuck is not None
    parent.close()
    assert not pid_alive(stuck)


# --- the fork server ---------------------------------------------------------------------

SLOW_DAG = """
import signal
import time
from pathlib import Path
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def nap():
    time.sleep(1.5)
    with Path({side!r}).open("a") as f:
        f.write("slow.nap\\n")

with DAG("slow"):
    PythonOperator(task_id="nap", python_callable=nap)

with DAG("stuck"):
    PythonOperator(task_id="wait", python_callable=lambda: time.sleep(600))

def deaf():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)

with DAG("deaf"):
    PythonOperator(task_id="wait", python_callable=deaf)
"""


@pytest.fixture
def slow_run(
    settings: Settings, session_factory: sessionmaker[Session], dags_folder: Path, side: Path
) -> str:
    """A run of DAG "slow" (one task that sleeps 1.5 s, then notes itself) queued; DAGs
    "stuck" (one task that sleeps 10 minutes) and "deaf" (the same, ignoring SIGTERM)
    are there too."""
    (dags_folder / "slow.py").write_text(textwrap.dedent(SLOW_DAG.format(side=str(side))))
    parse_and_unpause(session_factory, settings, "slow", "stuck", "deaf")
    return queued_run(session_factory, "slow")


@pytest.fixture
def server(parent: WarmParent) -> Iterator[ForkServer]:
    server = ForkServer.start(parent)
    yield server
    if server.sock.fileno() != -1:
        server.stop()


def events_until(server: ForkServer, wanted: dict[str, object]) -> list[dict[str, object]]:
    """The server's events, collected until one has every item of ``wanted``."""
    seen: list[dict[str, object]] = []

    def arrived() -> bool:
        seen.extend(server.events())
        return any(wanted.items() <= event.items() for event in seen)

    wait_for(arrived, f"the fork server to report {wanted}")
    return seen


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_the_fork_server_reports_each_try_done_then_exited(
    server: ForkServer,
    queued_runs: dict[str, str],
    slow_run: str,
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    pid = server.fork_try(TryRequest("one", queued_runs["one"], "t0", -1, 1))
    seen = events_until(server, {"op": "exited", "pid": pid})
    mine = [event for event in seen if event["pid"] == pid]
    assert mine == [{"op": "done", "pid": pid}, {"op": "exited", "pid": pid, "status": 0}]

    killed = server.fork_try(TryRequest("slow", slow_run, "nap", -1, 1))
    wait_for(lambda: states(session_factory, "slow")["nap"] == "running", "the nap to start")
    os.kill(killed, signal.SIGKILL)
    seen = events_until(server, {"op": "exited", "pid": killed})
    ended = [event for event in seen if event["pid"] == killed]
    assert len(ended) == 1  # no "done": it never recorded an end
    status = ended[0]["status"]
    assert isinstance(status, int)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGKILL
    assert side.read_text().splitlines() == ["one.t0"]


def test_the_fork_server_goes_with_its_scheduler_and_leaves_the_tries_running(
    server: ForkServer, slow_run: str, session_factory: sessionmaker[Session], side: Path
) -> None:
    server.fork_try(TryRequest("slow", slow_run, "nap", -1, 1))
    wait_for(lambda: children_of(server.pid), "the try and the standby to be forked")
    forked = children_of(server.pid)
    # As when the scheduler dies: its end of the socket closes.
    server.stop()
    assert not pid_alive(server.pid)
    wait_for(lambda: states(session_factory, "slow")["nap"] == "success", "the nap to end")
    assert side.read_text().splitlines() == ["slow.nap"]  # it ran on, once
    wait_for(lambda: not any(pid_alive(pid) for pid in forked), "the standby to be gone")


def test_a_try_does_not_keep_a_dead_fork_server_looking_alive(
    server: ForkServer, slow_run: str, session_factory: sessionmaker[Session]
) -> None:
    run_id = queued_run(session_factory, "stuck")
    stuck = server.fork_try(TryRequest("stuck", run_id, "wait", -1, 1))
    try:
        wait_for(lambda: states(session_factory, "stuck")["wait"] == "running", "the try")
        os.kill(server.pid, signal.SIGKILL)

        # The try sleeps for ten minutes and must not hold the server's end of the
        # socket open: the scheduler learns the server is gone while the try still runs.
        def gone() -> bool:
            try:
                server.events()
            except ForkServerGone:
                return True
            return False

        wait_for(gone, "the socket to close")
        assert pid_alive(stuck)
    finally:
        stop_group(stuck, signal.SIGKILL)


def test_the_local_executor_carries_on_when_its_fork_server_dies(
    settings: Settings,
    queued_runs: dict[str, str],
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    executor = LocalExecutor(settings)
    executor.start()
    try:
        run_id = queued_runs["one"]
        executor.queue(TryRequest("one", run_id, "t0", -1, 1))
        wait_for(executor.collect, "t0 to be reported")
        assert executor._server is not None
        os.kill(executor._server.pid, signal.SIGKILL)
        os.waitpid(executor._server.pid, 0)  # as the stop below would
        executor.queue(TryRequest("one", run_id, "t1", -1, 1))  # a new server forks it
        finished = wait_for(executor.collect, "t1 to be reported")
        assert [item.request.task_id for item in finished] == ["t1"]
    finally:
        executor.end(5.0)
        gc.unfreeze()
    assert states(session_factory, "one") == {"t0": "success", "t1": "success", "t2": "queued"}
    assert side.read_text().splitlines() == ["one.t0", "one.t1"]


# --- a Celery worker's spawned fork server --------------------------------------------------


@pytest.fixture
def spawned(settings: Settings) -> Iterator[SpawnedForkServer]:
    """A spawned server with two connections (it reads the test's settings from the
    environment, as a worker's does)."""
    spawned = SpawnedForkServer.spawn(hostname="spawned-test", connections=2)
    yield spawned
    spawned.stop()


def test_a_spawned_server_tells_each_connection_of_its_own_children(
    spawned: SpawnedForkServer,
    queued_runs: dict[str, str],
    session_factory: sessionmaker[Session],
    side: Path,
) -> None:
    first, second = spawned.connections
    ones = [first.fork_try(TryRequest("one", queued_runs["one"], f"t{i}", -1, 1)) for i in (0, 1)]
    two = second.fork_try(TryRequest("two", queued_runs["two"], "t0", -1, 1))
    heard_first: list[dict[str, object]] = []

    def both_exited() -> bool:
        heard_first.extend(first.events())
        return {e["pid"] for e in heard_first if e["op"] == "exited"} == set(ones)

    wait_for(both_exited, "the first connection's tries to exit")
    heard_second = events_until(second, {"op": "exited", "pid": two})
    assert {event["pid"] for event in heard_first} == set(ones)
    assert {event["pid"] for event in heard_second} == {two}
    assert {"op": "done", "pid": two} in heard_second
    assert sorted(side.read_text().splitlines()) == ["one.t0", "one.t1", "two.t0"]
    query = select(TaskInstance.hostname).where(TaskInstance.state == "success")
    with session_scope(session_factory) as session:
        assert set(session.scalars(query)) == {"spawned-test"}


def test_a_spawned_server_marks_a_duplicate_claim_as_not_ours(
    spawned: SpawnedForkServer, queued_runs: dict[str, str]
) -> None:
    connection = spawned.connections[0]
    request = TryRequest("one", queued_runs["one"], "t0", -1, 1)
    first = connection.fork_try(request)
    events_until(connection, {"op": "exited", "pid": first})
    again = connection.fork_try(request)  # no longer queued at try 1
    assert {"op": "done", "pid": again, "not_ours": True} in events_until(
        connection, {"op": "exited", "pid": again}
    )


@contextlib.contextmanager
def orphaned_try(
    spawned: SpawnedForkServer, factory: sessionmaker[Session], dag_id: str
) -> Iterator[int]:
    """The pid of a running try of ``dag_id``'s task "wait" whose spawned server has just
    ended, as when its worker dies: every connection closed. Killed on the way out."""
    run_id = queued_run(factory, dag_id)
    pid = spawned.connections[1].fork_try(TryRequest(dag_id, run_id, "wait", -1, 1))
    try:
        wait_for(lambda: states(factory, dag_id)["wait"] == "running", "the try")
        for connection in spawned.connections:
            connection.sock.close()
        assert spawned.process.wait(timeout=30) == 0
        yield pid
    finally:
        stop_group(pid, signal.SIGKILL)


def test_a_spawned_server_ends_with_its_connections_and_takes_its_tries_with_it(
    spawned: SpawnedForkServer, slow_run: str, session_factory: sessionmaker[Session]
) -> None:
    with orphaned_try(spawned, session_factory, "stuck") as stuck:
        # The try heard its parent die and stopped as interrupted.
        wait_for(lambda: not pid_alive(stuck), "the try to end with its server")
        wait_for(lambda: states(session_factory, "stuck")["wait"] == "up_for_retry", "its end")


def test_a_try_that_ignores_its_dead_server_s_sigterm_is_killed_after_a_grace(
    spawned: SpawnedForkServer, slow_run: str, session_factory: sessionmaker[Session]
) -> None:
    with orphaned_try(spawned, session_factory, "deaf") as deaf:
        # Its parent's death sent it SIGTERM, which it ignores: the watchdog thread
        # kills its process group once the grace has passed.
        wait_for(lambda: not pid_alive(deaf), "the watchdog", timeout=ORPHAN_GRACE_SECONDS + 30)
