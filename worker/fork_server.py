"""The local executor's fork server: a process that forks tries so the scheduler does not.

A fork costs its parent in proportion to the parent's mapped memory, and afterwards
every page the parent writes is copied once more (it is shared with the new child).
The scheduler writes many pages between two forks, so forking each try (and the standby
for the next one) from the scheduler cost it about a third of its time. The fork server
is a copy of the warm scheduler process (`worker.try_process.WarmParent`) that does
nothing but fork tries and callbacks, watch them and report to the scheduler over one
socket: a try's end recorded ("done"), a process ended ("exited", with its wait status).

It is forked when the executor first needs it and stopped when it has had nothing to
do for STANDBY_IDLE_SECONDS, so an idle scheduler keeps no extra process. When the
scheduler dies, the server sees its socket close and exits; the tries it started go on
and record their own ends, exactly as the children of a killed scheduler did. When the
server dies, the executor stops tracking its tries (they still record their ends, and
the liveness checks catch any that die unrecorded) and starts a new server.

Messages are JSON objects over a SOCK_SEQPACKET socket pair (one message per packet).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from worker.task_runner import TryRequest
from worker.try_process import (
    DONE,
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
    """The scheduler's handle on its fork server process."""

    pid: int
    sock: socket.socket
    last_used: float = field(default_factory=time.monotonic)
    _events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, parent: WarmParent) -> ForkServer:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the server never returns
            ours.close()
            _serve(parent, theirs)
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
        """What happened since the last call: ``{"op": "done", "pid": P}`` (the try's
        end is recorded, or its claim found it taken) and ``{"op": "exited", "pid": P,
        "status": S}``. Raises `ForkServerGone` if the server is gone
        (the events it sent before are returned by the next call first)."""
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
        """Close the socket (the server discards its standby and exits) and reap it."""
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


# --- the server -------------------------------------------------------------------------------


@dataclass
class _Served:
    process: TryProcess
    pidfd: int
    done_sent: bool = False


def _serve(parent: WarmParent, sock: socket.socket) -> NoReturn:  # pragma: no cover
    """The server's whole life (in the forked process): answer requests, report what
    the children do, exit when the scheduler's end of the socket closes."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scheduler's to handle
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        parent.private_fds = [sock.fileno()]  # the tries must not hold the socket open
        _Server(parent, sock).loop()
        code = 0
    except BaseException:
        logger.exception("The fork server failed")
    finally:
        os._exit(code)


class _Server:  # pragma: no cover - runs in the fork server process
    def __init__(self, parent: WarmParent, sock: socket.socket) -> None:
        self.parent = parent
        self.sock = sock
        self.children: dict[int, _Served] = {}
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ, ("control", 0))

    def loop(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                kind, pid = key.data
                if kind == "control":
                    data = self.sock.recv(MAX_MESSAGE)
                    if not data:  # the scheduler closed its end, or died
                        self.parent.close()
                        return
                    self._answer(json.loads(data))
                elif kind == "done":
                    self._read_done(pid)
                elif kind == "exit":
                    self._reap(pid)
            self.parent.expire_standby()

    def _answer(self, message: dict[str, Any]) -> None:
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
            self._send({"op": "error", "message": f"{type(exc).__name__}: {exc}"})
            return
        self._track(started)
        self._send({"op": "started", "pid": started.pid})
        self.parent.refill_standby()  # after answering: the scheduler does not wait for it

    def _track(self, started: TryProcess) -> None:
        os.set_blocking(started.fd, False)
        pidfd = os.pidfd_open(started.pid)
        self.children[started.pid] = _Served(started, pidfd)
        self.selector.register(started.fd, selectors.EVENT_READ, ("done", started.pid))
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", started.pid))

    def _read_done(self, pid: int) -> None:
        served = self.children[pid]
        said = read_available(served.process.fd)
        if DONE in said and not served.done_sent:
            served.done_sent = True
            self._send({"op": "done", "pid": pid})
        if not said:  # EOF: the process is ending; its pidfd says when it has
            self.selector.unregister(served.process.fd)

    def _reap(self, pid: int) -> None:
        served = self.children.pop(pid)
        _, status = os.waitpid(pid, 0)
        if not served.done_sent and DONE in read_available(served.process.fd):
            self._send({"op": "done", "pid": pid})
        with contextlib.suppress(KeyError):  # already gone at EOF
            self.selector.unregister(served.process.fd)
        self.selector.unregister(served.pidfd)
        os.close(served.pidfd)
        os.close(served.process.fd)
        served.process.reaped(status)
        self._send({"op": "exited", "pid": pid, "status": status})

    def _send(self, message: dict[str, Any]) -> None:
        self.sock.send(json.dumps(message).encode())


__all__ = ["STANDBY_IDLE_SECONDS", "ForkServer", "ForkServerGone"]
