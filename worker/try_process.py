"""One process per try, forked from a warm parent.

The fork servers (`worker.fork_server`: the local executor's and each Celery worker's)
are such parents: they import once what tries use, compile the statements a try runs
and freeze their heap, so a forked child starts a try in milliseconds. A crash,
``os._exit``, segfault or timeout ends only that child; the parent sees it end, and a
try whose process died without recording its end is ended as lost by
`worker.lost_tries`.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from tradewind.db import ConnectionLoan, read_session, run_core
from tradewind.processes import (
    collapse_heap_into_huge_pages,
    describe_exit,
    name_this_process,
    set_parent_death_signal,
)
from worker.dag_cache import DagFileCache
from worker.logs import TryIdentity
from worker.recorder import TAKEN, RecorderLink, claim_through, end_through
from worker.task_runner import (
    WARM_UP_REQUEST,
    Claim,
    TaskRunner,
    TryRequest,
    run_params,
    run_query,
)
from worker.timeout import request_stop

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from tradewind.settings import Settings

DONE = b"done"
# Written instead of DONE when the claim found the try no longer queued (another
# process took it). It contains DONE, so a reader asking only "is it over?" needs no
# other check; the Celery worker tells the two apart to log the drop in its own log.
NOT_OURS = DONE + b":not-ours"
# What tries commonly need, imported once in the parent instead of in every child
# (jsonschema comes with the first DAG file that defines a param with a schema, see
# `tradewind.sdk.params`: about 2 MB that every fork would copy the page table of).
WARM_MODULES = (
    "jinja2",
    "jinja2.sandbox",
    "jinja2.nativetypes",
    "jinja2.ext",
    "tradewind.sdk.decorators",
    "tradewind.sdk.templating",
    "tradewind.sdk.context",
    "tradewind.sdk.macros",
    "tradewind.operators.python",
    "tradewind.operators.bash",
    "tradewind.operators.empty",
    "worker.execution",
)
ORPHAN_GRACE_SECONDS = 10.0  # an orphaned try gets this long to stop before SIGKILL
STANDBY_IDLE_SECONDS = 30.0  # see `WarmParent.expire_standby`
STANDBY_EXIT_SECONDS = 2.0  # see `_Standby.discard`
IDLE_BEFORE_COLLAPSE_SECONDS = 0.25  # see `WarmParent.collapse_if_due`


@dataclass
class WarmParent:
    """What a forking parent prepares once: the settings, a warmed engine, loaded DAGs."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    dags: DagFileCache
    hostname: str | None = None
    # A Celery worker's fork server: a try dies with it, and it with its worker (so a
    # dead worker's try is a zombie and is retried elsewhere). The local executor lets
    # a try outlive a killed scheduler.
    die_with_parent: bool = False
    # Keep one child forked ahead of the next try (see `_Standby`).
    standby: bool = True
    # This process tells the scheduler when a child has recorded its try's end (the
    # local executor's fork server does), so the children do not wake it themselves:
    # one wake-up per try instead of two.
    reports_ends: bool = False
    # A fork server's recorder (`worker.recorder`): its standby children claim their
    # tries and write their plain ends through it, not over connections of their own.
    recorder: RecorderLink | None = None
    # Descriptors of this process that its children must not keep open (closed in each
    # child right after the fork): a fork server's socket to the scheduler.
    private_fds: list[int] = field(default_factory=list)
    _filelocs: dict[str, str] = field(default_factory=dict)
    _standby: _Standby | None = None
    # The `DagFileCache.generation` whose objects `settle_heap` has seen: a DAG file
    # loaded since is settled before the next standby is forked.
    _settled_generation: int = 0
    # Memory a DAG file loaded since the last collapse into huge pages: collapsed when
    # the parent has nothing else to do (see `collapse_if_due`).
    collapse_due: bool = False
    _runner: TaskRunner | None = None  # see `runner`

    @classmethod
    def prepare(
        cls,
        settings: Settings,
        *,
        hostname: str | None = None,
        die_with_parent: bool = False,
        reports_ends: bool = False,
    ) -> WarmParent:
        """Import what tries use, compile the statements they run, freeze the heap
        (fewer pages copied into each child) and put it in huge pages (cheaper forks)."""
        from tradewind.db import make_engine, make_session_factory
        from worker.task_runner import host_name, warm_up

        for module in WARM_MODULES:
            importlib.import_module(module)
        _warm_abc_caches()
        # Up to `parallelism` connections are lent to children at once (see `fork_try`),
        # kept by the engine's lender for the next ones (`tradewind.db.ConnectionLoan`);
        # the pool, which the lender draws on, never blocks.
        engine = make_engine(settings, lends=True, max_overflow=-1)
        factory = make_session_factory(engine)
        warm_up(factory)
        host_name()
        settle_heap()
        return cls(
            settings,
            engine,
            factory,
            DagFileCache(),
            hostname,
            die_with_parent=die_with_parent,
            reports_ends=reports_ends,
        )

    def close_private_fds(self) -> None:
        """In a process just forked from this one: close what only the parent may hold
        (`private_fds`, and the standby's request pipe: only the parent hands the standby
        its try, and the standby must see EOF when the parent discards it)."""
        standby = self._standby
        for fd in [*self.private_fds, *([standby.request_fd] if standby else [])]:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def standby_pid(self) -> int | None:
        """The process id of the child waiting for the next try, if there is one."""
        return None if self._standby is None else self._standby.process.pid

    def close(self) -> None:
        """End the standby child, if any (a fork server stopping)."""
        standby, self._standby = self._standby, None
        if standby is not None:
            standby.discard()

    def expire_standby(self) -> None:
        """End a standby that has waited STANDBY_IDLE_SECONDS: an idle parent keeps no
        extra process."""
        standby = self._standby
        if standby is not None and time.monotonic() - standby.forked_at > STANDBY_IDLE_SECONDS:
            self.close()

    def _take_standby(self) -> _Standby | None:
        """The standby child, if it has everything this parent has loaded since."""
        standby, self._standby = self._standby, None
        if standby is not None and standby.generation != self.dags.generation:
            standby.discard()  # forked before a DAG file was (re)loaded here
            return None
        return standby

    def refill_standby(self) -> None:
        """Fork a new standby child if there is none (see `fork_try`), after settling
        what DAG files loaded since the last one (off the path of the try that loaded
        them: a fork server refills after it has answered). Their memory is collapsed
        into huge pages later, by `collapse_if_due`: that took 10 to 100 ms, and the
        tries asked for meanwhile (the rest of a run's first tries) waited for it."""
        if self._settled_generation != self.dags.generation:
            settle_heap(collapse=False)
            self._settled_generation = self.dags.generation
            self.collapse_due = True
        if self.standby and self._standby is None:
            try:
                self._standby = _Standby.fork(self)
            except OSError:
                self._standby = None  # the next try forks on demand

    def collapse_if_due(self) -> None:
        """Put what DAG files added to the heap into huge pages; for a fork server that
        has been idle a moment (see `IDLE_BEFORE_COLLAPSE_SECONDS`)."""
        if self.collapse_due:
            self.collapse_due = False
            collapse_heap_into_huge_pages()

    def runner(self) -> TaskRunner:
        """The task runner of this parent's children, made here before the first fork:
        each child runs tries with its own copy of it (the fork's), so what a child sets
        on it stays its own. Made in each child instead, it cost every try about 120
        copied pages."""
        if self._runner is None:
            self._runner = TaskRunner(
                self.factory,
                self.settings,
                dags=self.dags,
                hostname=self.hostname,
                on_state_changed=_stop_this_try,
                wake_scheduler=not self.reports_ends,
            )
        return self._runner

    def fileloc_of(self, dag_id: str) -> str | None:
        """Where ``dag_id`` is defined, so that `fork_try` can load its file here once for
        every child (read once per DAG; a file that moved later only costs the children
        a load of their own, since each try loads its run's version by that version's
        own path)."""
        if dag_id not in self._filelocs:
            from sqlalchemy import select

            from tradewind.db import read_session
            from tradewind.models import DagModel

            with read_session(self.factory) as session:
                fileloc = session.scalar(select(DagModel.fileloc).where(DagModel.dag_id == dag_id))
            if fileloc is not None:
                self._filelocs[dag_id] = fileloc
        return self._filelocs.get(dag_id)


@dataclass
class TryProcess:
    """A forked child running one try (or one callback request, ``request`` None)."""

    pid: int
    fd: int  # readable: DONE once the try's end is recorded, EOF when the process ends
    request: TryRequest | None
    loan: ConnectionLoan | None = field(default=None, repr=False)

    def reaped(self, status: int) -> None:
        """Call once the process has been waited for: the parent takes back the database
        connection it lent (or closes it, if the child did not exit cleanly)."""
        loan, self.loan = self.loan, None
        if loan is not None:
            loan.settle(clean=os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)


def _warm_abc_caches() -> None:
    """Every log call with a single argument asks whether that argument is a Mapping
    (`logging.LogRecord`), as a PythonOperator's "Returned value was" line does. The
    first such question about a type walks every subclass of Mapping in the process and
    caches the answer: asked here once, the children inherit the answers instead of
    each finding them again (some eighty copied pages per try)."""
    for kind in (type(None), bool, int, float, str, bytes, list, tuple, datetime, timedelta):
        issubclass(kind, Mapping)


def settle_heap(*, collapse: bool = True) -> None:
    """In a warm parent, once it has loaded what its children use: freeze the heap (the
    children's garbage collections leave it alone, so they copy fewer of its pages) and,
    unless told not to, put it in huge pages (see `collapse_heap_into_huge_pages`)."""
    gc.collect()
    gc.freeze()
    if collapse:
        collapse_heap_into_huge_pages()


def fork_try(
    parent: WarmParent, request: TryRequest, *, fileloc: str | None, refill_standby: bool = True
) -> TryProcess:
    """Start ``request`` in a forked child; the caller reads ``fd``, reaps ``pid`` and
    then calls `TryProcess.reaped`.

    The child is the parent's standby when it has one (forked ahead, already warm), and
    a new standby is forked for the next try (unless ``refill_standby`` is false: then
    the caller calls `WarmParent.refill_standby` when it suits it); otherwise the child
    is forked now.
    """
    if fileloc is not None:
        parent.dags.prime(fileloc)  # the child inherits the imported DAG file
    standby = parent._take_standby()
    started = standby.start(request) if standby is not None else None
    if started is None:
        started = _fork(
            parent,
            request,
            lambda loan, parent_pid, write_fd: _child_main(
                request, parent, loan, parent_pid, write_fd
            ),
        )
    if refill_standby:
        parent.refill_standby()
    return started


def fork_callback(parent: WarmParent, request_id: int) -> TryProcess:
    """Run one callback request (see `tradewind.callbacks`) in a forked child."""
    return _fork(
        parent,
        None,
        lambda loan, parent_pid, write_fd: _callback_child_main(
            request_id, parent, loan, parent_pid, write_fd
        ),
    )


def _fork(
    parent: WarmParent,
    request: TryRequest | None,
    child_main: Callable[[ConnectionLoan, int, int], None],
) -> TryProcess:
    parent.runner()  # made here, once, for every child to inherit
    loan = ConnectionLoan(parent.engine)
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent_pid = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        loan.settle(clean=True)
        raise
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_fd)
        parent.close_private_fds()
        child_main(loan, parent_pid, write_fd)
    os.close(write_fd)
    _own_group(pid)
    return TryProcess(pid, read_fd, request, loan)


@dataclass
class _Standby:
    """A child forked ahead of its try. It has become a try's process and, when its
    parent has a recorder, holds a channel to it; without one it has taken over the
    connection its parent lent and run a query, so the copy-on-write faults of that
    first use are behind it. It waits for its request on a pipe and runs it like any
    other child. EOF instead of a request (the parent discarded it, or died) ends it."""

    process: TryProcess  # its ``request`` is set when it is handed one
    request_fd: int  # the parent writes the request here, then closes it
    generation: int  # the parent's `DagFileCache.generation` when it was forked
    forked_at: float = field(default_factory=time.monotonic)

    @classmethod
    def fork(cls, parent: WarmParent) -> _Standby:
        request_read, request_write = os.pipe()
        generation = parent.dags.generation
        channel = None if parent.recorder is None else parent.recorder.channel()

        def standby_main(loan: ConnectionLoan, parent_pid: int, write_fd: int) -> None:
            os.close(request_write)
            _standby_main(parent, loan, parent_pid, write_fd, request_read, channel)

        try:
            process = _fork(parent, None, standby_main)
        except OSError:
            os.close(request_write)
            raise
        finally:
            os.close(request_read)
            if channel is not None:
                channel.close()  # the child's end of it
        return cls(process, request_write, generation)

    def start(self, request: TryRequest) -> TryProcess | None:
        """Hand ``request`` over; None if the standby is gone (then it is reaped)."""
        try:
            os.write(self.request_fd, json.dumps(request.as_list()).encode())
        except OSError:
            self.discard()
            return None
        os.close(self.request_fd)
        self.process.request = request
        return self.process

    def discard(self) -> None:
        """End it (EOF on its pipe) and reap it. One still busy getting warm after
        STANDBY_EXIT_SECONDS (a database that does not answer) is killed: the parent
        must not wait on it."""
        pid = self.process.pid
        with contextlib.suppress(OSError):
            os.close(self.request_fd)
        os.close(self.process.fd)
        deadline = time.monotonic() + STANDBY_EXIT_SECONDS
        status = 1
        try:
            while (reaped := os.waitpid(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() >= deadline:
                    stop_group(pid, signal.SIGKILL)
                    reaped = os.waitpid(pid, 0)
                    break
                time.sleep(0.005)
            status = reaped[1]
        except ChildProcessError:
            pass
        self.process.reaped(status)


def _own_group(pid: int) -> None:
    """The child makes its own process group too; doing it here as well means a signal
    to the group right after the fork cannot miss it."""
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)


def read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 64)
    except BlockingIOError:
        return b""


def describe_status(status: int) -> str:
    """A wait status in words, for the log of a try whose process ended early."""
    words = describe_exit(status)  # "killed by SIGKILL" or "exit code 3"
    verb = "was" if words.startswith("killed") else "ended with"
    return f"the try's process {verb} {words}"


def stop_group(pid: int, sig: signal.Signals) -> None:
    """Signal a try's process group (the try and whatever it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# --- in the child -----------------------------------------------------------------------


def _become_child(
    parent: WarmParent, loan: ConnectionLoan, parent_pid: int, name: str = "tw-try"
) -> None:  # pragma: no cover - runs in children
    name_this_process(name)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # our own group: stopping the try stops what it started
    if parent.die_with_parent:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    from tradewind.db import use_session_factory

    # The fork gave every engine a new, empty pool (the warmed statement cache is kept);
    # its first connection is the one the parent lent.
    loan.take_over()
    use_session_factory(parent.factory)


def _die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in children
    """A try whose worker process dies (``kill -9``, the OOM killer) must not go on
    running unseen while the scheduler retries it elsewhere. On Linux the kernel sends
    SIGTERM when the parent dies (the try stops as interrupted and its operator cleans
    up); a watchdog kills the try's group if that has not ended it soon after."""
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # it died before we asked to follow it
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_SECONDS)
        os.killpg(0, signal.SIGKILL)

    # A bare thread, for the same reason as the log shipper's (see `worker.logs`).
    _thread.start_new_thread(watch, ())


def _exit_after(body: Callable[[], int]) -> NoReturn:  # pragma: no cover - in children
    """Run a child's whole life; exit with what it returns (1 if it raised). A forked
    child must never return into its parent's code."""
    code = 1
    try:
        code = body()
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _child_main(
    request: TryRequest, parent: WarmParent, loan: ConnectionLoan, parent_pid: int, write_fd: int
) -> None:  # pragma: no cover - runs in children
    """One try, then exit."""

    def life() -> int:
        _become_child(parent, loan, parent_pid)
        return _run_try(request, parent, _task_runner(parent, write_fd), write_fd)

    _exit_after(life)


def _standby_main(
    parent: WarmParent,
    loan: ConnectionLoan,
    parent_pid: int,
    write_fd: int,
    request_fd: int,
    channel: socket.socket | None,
) -> None:  # pragma: no cover - runs in children
    """Get warm, wait for a request, run it, exit. With a ``channel`` to a recorder, the
    claim and a plain end go through it (and are done here only if it cannot)."""

    def life() -> int:
        _become_child(parent, loan, parent_pid)
        runner = _task_runner(parent, write_fd)
        if channel is None:
            _touch_the_database(parent, runner)
        said = b""
        while chunk := os.read(request_fd, 4096):
            said += chunk
        os.close(request_fd)
        if not said:  # discarded
            return 0
        request = TryRequest.from_list(json.loads(said))
        claim = None
        if channel is not None:
            answer = claim_through(channel, request, os.getpid())
            if answer == TAKEN:
                runner.declined(request)
                _tell_parent(write_fd, NOT_OURS)
                return 0
            claim = answer if isinstance(answer, Claim) else None  # None: claim it here
            runner.end_writer = lambda record: end_through(channel, record)
        return _run_try(request, parent, runner, write_fd, claim)

    _exit_after(life)


def _touch_the_database(
    parent: WarmParent, runner: TaskRunner
) -> None:  # pragma: no cover - runs in children
    """Read what a try reads first, for a run that does not exist: the connection, the
    session and the statement machinery are in this process's own pages afterwards.
    Only a read, so that a standby costs the database next to nothing (and never takes
    SQLite's write lock)."""
    with read_session(parent.factory) as session:
        run_core(session, run_query(), run_params(WARM_UP_REQUEST)).first()


def _task_runner(parent: WarmParent, write_fd: int) -> TaskRunner:  # pragma: no cover
    """In a child: its copy of the parent's runner, which tells the parent on
    ``write_fd`` once the try's end is recorded."""

    def recorded() -> None:
        _tell_parent(write_fd, DONE)

    runner = parent.runner()
    runner.on_recorded = recorded
    return runner


def _tell_parent(write_fd: int, what: bytes) -> None:  # pragma: no cover - in children
    """Tell the process that forked this one how the try went. If it has died (a
    killed fork server, whose tries go on as orphans), no one is left to hear it: the
    try's own end is recorded all the same, so it exits as it would have."""
    with contextlib.suppress(BrokenPipeError):
        os.write(write_fd, what)


def _stop_this_try() -> None:  # pragma: no cover - runs in children
    os.kill(os.getpid(), signal.SIGTERM)  # raises TaskTerminated in the try


def _run_try(
    request: TryRequest,
    parent: WarmParent,
    runner: TaskRunner,
    write_fd: int,
    claim: Claim | None = None,
) -> int:  # pragma: no cover - runs in children
    signal.signal(signal.SIGTERM, _terminate)
    _redirect_output(request, runner.logs_folder)
    result = runner.run(request, claim)
    _tell_parent(write_fd, DONE if result.ran else NOT_OURS)
    return 0


def _callback_child_main(
    request_id: int, parent: WarmParent, loan: ConnectionLoan, parent_pid: int, write_fd: int
) -> None:  # pragma: no cover - runs in children
    def life() -> int:
        _become_child(parent, loan, parent_pid, "tw-callback")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from worker.callbacks import run_callback_request

        run_callback_request(parent.factory, parent.settings, parent.dags, request_id)
        _tell_parent(write_fd, DONE)
        return 0

    _exit_after(life)


def _terminate(_signum: int, _frame: FrameType | None) -> None:  # pragma: no cover
    request_stop("the try was asked to stop (SIGTERM): its worker stops or its state changed")


def _redirect_output(request: TryRequest, logs_folder: Path) -> None:  # pragma: no cover
    """Output that bypasses Python (C extensions, inherited fds) goes to the try's log file."""
    ident = TryIdentity(
        0, request.dag_id, request.run_id, request.task_id, request.map_index, request.try_number
    )
    path = ident.log_path(logs_folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
