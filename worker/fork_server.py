"""Fork servers: processes that fork tries so the scheduler and the worker do not.

A fork costs its parent in proportion to the parent's mapped memory, and afterwards
every page the parent writes is copied once more (it is shared with the new child).
The scheduler writes many pages between two forks, so forking each try (and the standby
for the next one) from the scheduler cost it about a third of its time. A fork server is
a warm parent (`worker.try_process.WarmParent`) that does nothing but fork tries and
callbacks, watch them and report to its client: a try's end recorded ("done"), a
process ended ("exited", with its wait status).

The local executor's server is forked from the scheduler when the first try comes and
stopped when it has had nothing to do for STANDBY_IDLE_SECONDS, so an idle scheduler
keeps no extra process. When the scheduler dies, the server sees its socket close and
exits; the tries it started go on and record their own ends, exactly as the children of
a killed scheduler did. When the server dies, the executor stops tracking its tries
(they still record their ends, and the liveness checks catch any that die unrecorded)
and starts a new server.

Each server forks a recorder (`worker.recorder`) when it starts, before any child: the
process that claims the tries of the server's children and writes their plain ends, in
batches. The server itself stays out of the database: every page it touched after a fork
would be copied again.

A Celery worker spawns its server as a new process (`SpawnedForkServer`, running this
module), one connection per thread of its pool: it is not a copy of a process that runs
Celery's threads, and it holds only what tries need. Its tries die with it (see
`WarmParent.die_with_parent`), and it exits when the worker's connections close.

Messages are JSON objects over SOCK_SEQPACKET socket pairs (one message per packet); a
server reports a child's events on the connection that asked for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tradewind.db import make_spare_pools_final
from tradewind.processes import describe_exit, live_for_a_client, name_this_process
from worker.recorder import RecorderLink
from worker.task_runner import TryRequest
from worker.try_process import (
    DONE,
    IDLE_BEFORE_COLLAPSE_SECONDS,
    NOT_OURS,
    STANDBY_IDLE_SECONDS,
    TryProcess,
    WarmParent,
    fork_callback,
    fork_try,
    read_available,
)

logger = logging.getLogger(__name__)

MAX_MESSAGE = 65536
SERVER_EXIT_SECONDS = 5.0  # a server asked to stop gets this long before SIGKILL


class ForkServerGone(Exception):
    """The fork server's socket closed: it died (or was stopped)."""


# --- the scheduler's side ------------------------------------------------------------------


@dataclass
class ForkServer:
    """One connection to a fork server process: the scheduler's, or one thread's of a
    Celery worker. Not for two threads at once."""

    pid: int
    sock: socket.socket
    last_used: float = field(default_factory=time.monotonic)
    _events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, parent: WarmParent) -> ForkServer:
        """Fork a server from this (warm) process, with one connection."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the server never returns
            ours.close()
            _serve(parent, [theirs])
        theirs.close()
        return cls(pid, ours)

    def fileno(self) -> int:
        return self.sock.fileno()

    def fork_try(self, request: TryRequest) -> int:
        """Start ``request``; the process id of its child. Raises OSError if the server
        could not fork, `ForkServerGone` if the server is gone."""
        return self._ask({"op": "try", "request": request.as_list()})

    def fork_callback(self, request_id: int) -> int:
        return self._ask({"op": "callback", "request_id": request_id})

    def events(self) -> list[dict[str, Any]]:
        """What happened since the last call to the children this connection asked for:
        ``{"op": "done", "pid": P}`` (the try's end is recorded; with ``"not_ours":
        true`` when its claim found it taken) and ``{"op": "exited", "pid": P,
        "status": S}``. Raises `ForkServerGone` if the server is gone (the events it
        sent before are returned by the next call first)."""
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                if self._events:
                    break  # report what arrived first; the next call raises
                raise ForkServerGone
            self._events.append(json.loads(data))
        events, self._events = self._events, []
        return events

    def stop(self) -> None:
        """Close the socket (a server with no other connection discards its standby and
        exits) and reap the server, which this process forked."""
        self.sock.close()
        deadline = time.monotonic() + SERVER_EXIT_SECONDS
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(self.pid, os.WNOHANG)[0] == 0:
                if time.monotonic() >= deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.005)

    def _ask(self, message: dict[str, Any]) -> int:
        self.last_used = time.monotonic()
        try:
            self.sock.send(json.dumps(message).encode())
        except OSError:
            raise ForkServerGone from None
        while True:  # events may arrive before the answer; keep them for `events`
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                raise ForkServerGone
            answer = json.loads(data)
            if answer["op"] == "started":
                return int(answer["pid"])
            if answer["op"] == "error":
                raise OSError(answer["message"])
            self._events.append(answer)


@dataclass
class SpawnedForkServer:
    """A fork server started as a new process (``python -m worker.fork_server``) with
    one connection per thread that will use it; its tries die with it."""

    process: subprocess.Popen[bytes]
    connections: list[ForkServer]

    @classmethod
    def spawn(cls, *, hostname: str, connections: int) -> SpawnedForkServer:
        """Start one; it reads the settings from the environment, as this process did.
        It answers once it has warmed up (about a second); requests wait until then."""
        pairs = [
            socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(connections)
        ]
        theirs = [b.fileno() for _, b in pairs]
        try:
            command = [sys.executable, "-m", "worker.fork_server", "--hostname", hostname]
            process = subprocess.Popen([*command, *map(str, theirs)], pass_fds=theirs)
        except BaseException:
            for a, b in pairs:
                a.close()
                b.close()
            raise
        for _, b in pairs:
            b.close()
        return cls(process, [ForkServer(process.pid, a) for a, _ in pairs])

    def stop(self) -> None:
        """Close every connection (the server discards its standby and exits; tries
        still running end with it) and wait for it."""
        for connection in self.connections:
            connection.sock.close()
        try:
            self.process.wait(timeout=SERVER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the server -------------------------------------------------------------------------------


@dataclass
class _Served:
    process: TryProcess
    pidfd: int
    client: socket.socket  # the connection that asked for it, which hears of it
    done_sent: bool = False


def main(argv: Sequence[str] | None = None) -> NoReturn:  # pragma: no cover - a process
    """A spawned server (see `SpawnedForkServer`): ``--hostname H FD...``."""
    from tradewind.processes import configure_daemon_logging
    from tradewind.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m worker.fork_server")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("fds", nargs="+", type=int)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_daemon_logging(settings.log_level)
    socks = [socket.socket(fileno=fd) for fd in args.fds]
    parent = WarmParent.prepare(settings, hostname=args.hostname, die_with_parent=True)
    _serve(parent, socks)


def _serve(parent: WarmParent, socks: list[socket.socket]) -> NoReturn:  # pragma: no cover
    """The server's whole life: answer requests, report what the children do, exit when
    every connection has closed (its client stopped, or died)."""

    def life() -> None:
        name_this_process("tw-fork-server")
        pass_task_logs_through_the_root()
        # The tries must not hold a connection open.
        parent.private_fds = [sock.fileno() for sock in socks]
        _Server(parent, socks).loop()

    live_for_a_client("fork server", life)


def pass_task_logs_through_the_root() -> None:
    """Lower the root logger to INFO here, once (its handlers keep their own levels, so
    the server's output does not change): a try's log capture needs INFO, and a level
    that each try had to set and reset in its own child cost it a pass over every
    logger of the process (see `worker.logs.capture`)."""
    root = logging.getLogger()
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)


class _Server:  # pragma: no cover - runs in the fork server process
    def __init__(self, parent: WarmParent, socks: list[socket.socket]) -> None:
        self.parent = parent
        self.clients = {sock.fileno(): sock for sock in socks}
        self.children: dict[int, _Served] = {}
        self.selector = selectors.DefaultSelector()
        for sock in socks:
            self.selector.register(sock, selectors.EVENT_READ, ("control", sock.fileno()))
        # This process never replaces its engine's pool nor changes its listeners: the
        # check for that before every fork is skipped from now on.
        make_spare_pools_final()
        self._start_recorder()

    def _start_recorder(self) -> None:
        """Fork the recorder (before any child, which must not inherit a client's
        socket through it), or carry on without one if that fails."""
        try:
            link = RecorderLink.start(self.parent)
        except OSError:
            logger.exception("Could not start the recorder; tries record themselves")
            return
        self.parent.recorder = link
        self.parent.private_fds.extend(link.fds)
        self.selector.register(link.pidfd, selectors.EVENT_READ, ("recorder", link.pid))

    def _recorder_ended(self) -> None:
        """The recorder died: tries whose child holds a channel to it record themselves;
        a new one serves the next children."""
        link, self.parent.recorder = self.parent.recorder, None
        assert link is not None
        self.selector.unregister(link.pidfd)
        for fd in link.fds:
            with contextlib.suppress(ValueError):
                self.parent.private_fds.remove(fd)
        ended = describe_exit(link.reap())
        logger.warning("The recorder (pid %s) ended (%s); starting another", link.pid, ended)
        self._start_recorder()

    def loop(self) -> None:
        while self.clients:
            wait = IDLE_BEFORE_COLLAPSE_SECONDS if self.parent.collapse_due else 1.0
            events = self.selector.select(timeout=wait)
            if not events:
                self.parent.collapse_if_due()
            for key, _ in events:
                # An earlier event of this batch may have dropped the client or reaped
                # the child that this one is about.
                kind, number = key.data
                if kind == "control" and number in self.clients:
                    self._hear(self.clients[number])
                elif kind == "done" and number in self.children:
                    self._read_done(number)
                elif kind == "exit" and number in self.children:
                    self._reap(number)
                elif kind == "recorder":
                    self._recorder_ended()
            self.parent.expire_standby()
        self.parent.close()
        if self.parent.recorder is not None:
            self.parent.recorder.stop()  # it exits once the last child's channel closes

    def _hear(self, client: socket.socket) -> None:
        try:
            data = client.recv(MAX_MESSAGE)
        except OSError:  # reset: the client closed its end with our reports unread
            data = b""
        if data:
            self._answer(client, json.loads(data))
        else:
            self._drop(client)

    def _drop(self, client: socket.socket) -> None:
        """The client closed its end, or died: its children go on, unreported."""
        if self.clients.pop(client.fileno(), None) is not None:
            self.selector.unregister(client)
            client.close()

    def _answer(self, client: socket.socket, message: dict[str, Any]) -> None:
        try:
            if message["op"] == "try":
                request = TryRequest.from_list(message["request"])
                started = fork_try(
                    self.parent,
                    request,
                    fileloc=self.parent.fileloc_of(request.dag_id),
                    refill_standby=False,
                )
            else:
                started = fork_callback(self.parent, int(message["request_id"]))
        except Exception as exc:  # the fork failed (or the database did, for fileloc_of)
            self._reply(client, {"op": "error", "message": f"{type(exc).__name__}: {exc}"})
            return
        self._track(started, client)
        self._reply(client, {"op": "started", "pid": started.pid})
        self.parent.refill_standby()  # after answering: the client does not wait for it

    def _track(self, started: TryProcess, client: socket.socket) -> None:
        os.set_blocking(started.fd, False)
        pidfd = os.pidfd_open(started.pid)
        self.children[started.pid] = _Served(started, pidfd, client)
        self.selector.register(started.fd, selectors.EVENT_READ, ("done", started.pid))
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", started.pid))

    def _read_done(self, pid: int) -> None:
        served = self.children[pid]
        said = read_available(served.process.fd)
        self._report_done(served, said)
        if not said:  # EOF: the process is ending; its pidfd says when it has
            self.selector.unregister(served.process.fd)

    def _report_done(self, served: _Served, said: bytes) -> None:
        if DONE in said and not served.done_sent:
            served.done_sent = True
            done: dict[str, Any] = {"op": "done", "pid": served.process.pid}
            if NOT_OURS in said:
                done["not_ours"] = True
            self._reply(served.client, done)

    def _reap(self, pid: int) -> None:
        served = self.children.pop(pid)
        _, status = os.waitpid(pid, 0)
        self._report_done(served, read_available(served.process.fd))
        with contextlib.suppress(KeyError):  # already gone at EOF
            self.selector.unregister(served.process.fd)
        self.selector.unregister(served.pidfd)
        os.close(served.pidfd)
        os.close(served.process.fd)
        served.process.reaped(status)
        self._reply(served.client, {"op": "exited", "pid": pid, "status": status})

    def _reply(self, client: socket.socket, message: dict[str, Any]) -> None:
        """Send ``message`` to ``client``, unless it has gone (then drop it)."""
        if client.fileno() not in self.clients:
            return
        try:
            client.send(json.dumps(message).encode())
        except OSError:
            self._drop(client)


__all__ = ["STANDBY_IDLE_SECONDS", "ForkServer", "ForkServerGone", "SpawnedForkServer"]

if __name__ == "__main__":  # pragma: no cover - see `SpawnedForkServer`
    main()
