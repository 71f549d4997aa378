"""The recorder (`worker.recorder`): claims tries for a fork server's children and
writes their plain ends, and never costs a try its run when it cannot.

Its protocol is exercised from this process, as a child would use it; then a fork server
is made to lose its recorder (and its standby) between tries and in the middle of one:
every try still runs once and its end is recorded, by the child itself if need be.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import socket
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.daemons import pid_alive, wait_for
from tests.integration.test_scheduler import parse_and_unpause
from tests.integration.test_try_process import (
    children_of,
    events_until,
    parent,  # noqa: F401 - a fixture
    queued_run,
    queued_runs,  # noqa: F401 - a fixture
    server,  # noqa: F401 - a fixture
    side,  # noqa: F401 - a fixture
    states,
)
from tradewind.db import session_scope
from tradewind.models import LogChunk, TaskInstance, XCom
from tradewind.settings import Settings
from tradewind.state import TaskInstanceState
from worker.fork_server import ForkServer
from worker.recorder import TAKEN, RecorderLink, claim_through, end_through
from worker.task_runner import Claim, EndRecord, EndWritten, TryRequest
from worker.try_process import WarmParent, fork_try

PR_SET_CHILD_SUBREAPER = 36  # prctl(2)

pytestmark = pytest.mark.integration


@pytest.fixture
def link(parent: WarmParent) -> Iterator[RecorderLink]:  # noqa: F811 - the fixture
    link = RecorderLink.start(parent)
    yield link
    link.stop()
    os.waitpid(link.pid, 0)
    os.close(link.pidfd)


@pytest.fixture
def channel(link: RecorderLink) -> Iterator[socket.socket]:
    channel = link.channel()
    assert channel is not None
    yield channel
    channel.close()


def end_of(claim: Claim, request: TryRequest, **changes: object) -> EndRecord:
    fields: dict[str, object] = {
        "request": request,
        "ti_id": claim.ti_id,
        "dag_run_pk": claim.run.id,
        "state": TaskInstanceState.SUCCESS,
        "next_try_at": None,
        "started": claim.started,
        "ended": claim.started + timedelta(seconds=1),
        "rendered_fields": {"op_args": "[]"},
        "xcoms": (("return_value", 42),),
        "log_text": "the try's last lines\n",
    }
    fields.update(changes)
    return EndRecord(**fields)  # type: ignore[arg-type]


def row(factory: sessionmaker[Session], dag_id: str, task_id: str) -> TaskInstance:
    with session_scope(factory) as session:
        found = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id
            )
        ).one()
        session.expunge(found)
        return found


def test_the_recorder_claims_once_and_writes_an_end_with_its_log_and_xcoms(
    channel: socket.socket,
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
    session_factory: sessionmaker[Session],
) -> None:
    request = TryRequest("one", queued_runs["one"], "t0", -1, 1)
    claim = claim_through(channel, request, 4242)
    assert isinstance(claim, Claim)
    claimed = row(session_factory, "one", "t0")
    assert (claimed.state, claimed.pid) == ("running", 4242)

    # Another process asking for the same try is told it is taken; the process it was
    # claimed for may ask again (its recorder may have died before it could answer).
    assert claim_through(channel, request, 4343) == TAKEN
    assert isinstance(claim_through(channel, request, 4242), Claim)

    written = end_through(channel, end_of(claim, request))
    assert written == EndWritten(TaskInstanceState.SUCCESS, recorded=True)
    with session_scope(session_factory) as session:
        state = session.scalar(select(TaskInstance.state).where(TaskInstance.id == claim.ti_id))
        values = session.execute(select(XCom.key, XCom.value)).all()
        logs = session.scalars(select(LogChunk.content).where(LogChunk.task_id == "t0")).all()
    assert state == "success"
    assert [(key, value) for key, value in values] == [("return_value", 42)]
    assert logs == ["the try's last lines\n"]

    # A second end of the same try finds it ended: not recorded, its log still kept.
    again = end_through(channel, end_of(claim, request, log_text="late\n"))
    assert again == EndWritten(TaskInstanceState.SUCCESS, recorded=False)
    with session_scope(session_factory) as session:
        logs = session.scalars(select(LogChunk.content).where(LogChunk.task_id == "t0")).all()
    assert logs == ["the try's last lines\n", "late\n"]


def test_a_runner_that_claims_many_tries_reads_each_dag_version_once(
    parent: WarmParent,  # noqa: F811 - the fixture
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
) -> None:
    """A version row never changes: a recorder claiming thousands of tries of one DAG
    version reads it once."""
    from sqlalchemy import event

    from worker.task_runner import TaskRunner

    runner = TaskRunner(parent.factory, parent.settings, dags=parent.dags)
    versions: list[str] = []

    def note(*args: object) -> None:
        if "FROM dag_version" in str(args[2]):
            versions.append(str(args[2]))

    event.listen(parent.engine, "before_cursor_execute", note)
    try:
        claims = [
            runner.claim(TryRequest("one", queued_runs["one"], task_id, -1, 1), pid=7)
            for task_id in ("t0", "t1", "t2")
        ]
    finally:
        event.remove(parent.engine, "before_cursor_execute", note)
    assert all(isinstance(claim, Claim) for claim in claims)
    assert len({claim.version for claim in claims if claim is not None}) == 1
    assert len(versions) == 1


def test_an_end_too_large_for_the_recorder_is_left_to_the_child(
    channel: socket.socket,
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
    session_factory: sessionmaker[Session],
) -> None:
    request = TryRequest("one", queued_runs["one"], "t1", -1, 1)
    claim = claim_through(channel, request, 4242)
    assert isinstance(claim, Claim)
    big = end_of(claim, request, xcoms=(("return_value", "x" * (4 << 20)),))
    assert end_through(channel, big) is None  # the caller writes it itself
    assert row(session_factory, "one", "t1").state == "running"
    # The channel still serves the next request.
    assert end_through(channel, end_of(claim, request)) == EndWritten(
        TaskInstanceState.SUCCESS, recorded=True
    )


def test_a_recorder_ends_once_its_server_and_its_last_channel_have_gone(
    parent: WarmParent,  # noqa: F811 - the fixture
) -> None:
    link = RecorderLink.start(parent)
    channel = link.channel()
    assert channel is not None
    link.stop()  # as when its fork server exits
    assert pid_alive(link.pid)  # a child may still ask it for its end
    channel.close()
    status = link.reap()
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0


def test_a_child_whose_recorder_is_gone_claims_and_records_itself(
    parent: WarmParent,  # noqa: F811 - the fixture
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
    session_factory: sessionmaker[Session],
    side: Path,  # noqa: F811 - the fixture
) -> None:
    link = RecorderLink.start(parent)
    parent.recorder = link
    try:
        parent.refill_standby()  # holds a channel to this recorder
        os.kill(link.pid, signal.SIGKILL)
        os.waitpid(link.pid, 0)
        started = fork_try(
            parent,
            TryRequest("one", queued_runs["one"], "t2", -1, 1),
            fileloc=parent.fileloc_of("one"),
        )
        assert started.pid != os.getpid()
        _, status = os.waitpid(started.pid, 0)
        started.reaped(status)
        os.close(started.fd)
    finally:
        parent.recorder = None
        parent.close()
        os.close(link.pidfd)
        link.control.close()
        gc.collect()
    assert status == 0
    assert states(session_factory, "one")["t2"] == "success"
    assert side.read_text().splitlines() == ["one.t2"]


# --- a fork server losing its recorder ---------------------------------------------------

GATED_DAG = """
import time
from pathlib import Path
from tradewind import DAG
from tradewind.operators.python import PythonOperator

def gated():
    while not Path({gate!r}).exists():
        time.sleep(0.05)
    with Path({side!r}).open("a") as f:
        f.write("gated.wait\\n")

with DAG("gated"):
    PythonOperator(task_id="wait", python_callable=gated)
"""


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "gate"


@pytest.fixture
def gated_run(
    settings: Settings,
    session_factory: sessionmaker[Session],
    dags_folder: Path,
    side: Path,  # noqa: F811 - the fixture
    gate: Path,
) -> str:
    """A run of DAG "gated" (one task that waits until ``gate`` exists, then notes
    itself in ``side``), queued."""
    source = GATED_DAG.format(gate=str(gate), side=str(side))
    (dags_folder / "gated.py").write_text(textwrap.dedent(source))
    parse_and_unpause(session_factory, settings, "gated")
    return queued_run(session_factory, "gated")


def has_died(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie its parent has not reaped yet counts)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def kill_all_but(server: ForkServer, keep: set[int]) -> list[int]:  # noqa: F811
    """SIGKILL every child of the server (its standby, its recorder) not in ``keep``."""
    killed = [pid for pid in children_of(server.pid) if pid not in keep]
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    return killed


def test_a_try_whose_recorder_dies_while_it_runs_records_its_own_end(
    server: ForkServer,  # noqa: F811 - the fixture
    gated_run: str,
    gate: Path,
    session_factory: sessionmaker[Session],
    side: Path,  # noqa: F811 - the fixture
) -> None:
    pid = server.fork_try(TryRequest("gated", gated_run, "wait", -1, 1))
    wait_for(lambda: states(session_factory, "gated")["wait"] == "running", "the try")
    assert kill_all_but(server, {pid})  # the recorder, and the standby
    gate.touch()
    seen = events_until(server, {"op": "exited", "pid": pid})
    assert {"op": "done", "pid": pid} in seen
    assert {"op": "exited", "pid": pid, "status": 0} in seen
    assert states(session_factory, "gated")["wait"] == "success"
    assert side.read_text().splitlines() == ["gated.wait"]
    with session_scope(session_factory) as session:
        logs = "".join(session.scalars(select(LogChunk.content)))
    assert "Try 1 ends: success" in logs


def process_name(pid: int) -> str:
    """What ``ps -o comm`` shows for ``pid``."""
    with open(f"/proc/{pid}/comm") as handle:
        return handle.read().strip()


def adopt_orphans(adopt: bool) -> None:
    """Have the processes orphaned below this one become its children (Linux's child
    subreaper), so that it can wait for them and read how they exited."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(adopt), 0, 0, 0)


def test_a_try_whose_fork_server_died_ends_cleanly_when_it_cannot_report(
    server: ForkServer,  # noqa: F811 - the fixture
    gated_run: str,
    gate: Path,
    session_factory: sessionmaker[Session],
) -> None:
    """Its end is recorded, and the report to the server that is gone is dropped: the
    try exits 0 (it raised BrokenPipeError and exited 1, a traceback in its log)."""
    pid = server.fork_try(TryRequest("gated", gated_run, "wait", -1, 1))
    wait_for(lambda: states(session_factory, "gated")["wait"] == "running", "the try")
    wait_for(lambda: len(children_of(server.pid)) == 3, "the recorder and a standby")
    recorder, standby = sorted((p for p in children_of(server.pid) if p != pid), key=process_name)
    assert (process_name(recorder), process_name(standby)) == ("tw-recorder", "tw-try")
    adopt_orphans(True)
    try:
        os.kill(server.pid, signal.SIGKILL)
        wait_for(partial(has_died, server.pid), "the server to die")  # we adopted its own
        os.waitpid(standby, 0)  # it held the try's pipe to the server too
        gate.touch()
        _, status = os.waitpid(pid, 0)
        os.waitpid(recorder, 0)  # it ends once the try's channel has closed
    finally:
        gate.touch()  # whatever failed, the try does not wait forever
        adopt_orphans(False)
    assert states(session_factory, "gated")["wait"] == "success"
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0


def run_all(server: ForkServer, requests: list[TryRequest]) -> list[int]:  # noqa: F811
    """Start ``requests`` on the server; wait until each has exited; their statuses."""
    pids = [server.fork_try(request) for request in requests]
    statuses: dict[int, int] = {}

    def all_exited() -> bool:
        for event in server.events():
            if event["op"] == "exited":
                statuses[int(event["pid"])] = int(event["status"])
        return statuses.keys() >= set(pids)

    wait_for(all_exited, "the tries to exit")
    return [statuses[pid] for pid in pids]


def test_a_fork_server_that_lost_its_recorder_and_standby_runs_every_next_try(
    server: ForkServer,  # noqa: F811 - the fixture
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
    session_factory: sessionmaker[Session],
    side: Path,  # noqa: F811 - the fixture
) -> None:
    one, two = queued_runs["one"], queued_runs["two"]
    rounds = [
        [TryRequest("one", one, "t0", -1, 1)],
        [TryRequest("one", one, "t1", -1, 1)],  # its recorder and standby are new
        [TryRequest("one", one, "t2", -1, 1), TryRequest("two", two, "t0", -1, 1)],
    ]
    for number, requests in enumerate(rounds):
        if number:
            # After a try, the server keeps its recorder and a standby: kill both.
            wait_for(lambda: len(children_of(server.pid)) == 2, "a recorder and a standby")
            killed = kill_all_but(server, set())
            assert len(killed) == 2
            for pid in killed:
                wait_for(partial(has_died, pid), f"process {pid} to die")
        assert run_all(server, requests) == [0] * len(requests)
    assert states(session_factory, "one") == {"t0": "success", "t1": "success", "t2": "success"}
    assert states(session_factory, "two")["t0"] == "success"
    assert sorted(side.read_text().splitlines()) == ["one.t0", "one.t1", "one.t2", "two.t0"]


def test_the_server_its_recorder_and_its_tries_carry_names_for_ps(
    server: ForkServer,  # noqa: F811 - the fixture
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
) -> None:
    """A server forked from the scheduler keeps the scheduler's command line; its name
    (``ps -o comm``, top, /proc/PID/comm) tells the processes apart."""
    assert run_all(server, [TryRequest("one", queued_runs["one"], "t0", -1, 1)]) == [0]
    wait_for(lambda: len(children_of(server.pid)) == 2, "a recorder and a standby")
    assert process_name(server.pid) == "tw-fork-server"
    names = sorted(process_name(pid) for pid in children_of(server.pid))
    assert names == ["tw-recorder", "tw-try"]
