"""The recorder: the process that claims tries for a fork server's children and writes
their plain ends, many per transaction.

Each try's child used to open its own database connection to claim its try and to write
its end: two write transactions per try, each with the connection's set-up, and on
SQLite two turns at the write lock. A fork server cannot do that work itself: every page
its Python objects touch after a fork is shared with the new child and must be copied
once more, so the server's time per try tripled when it did. The recorder is a copy of
the warm server made once, when the server starts; it never forks, so its pages stay its
own.

Every child the server forks for a try gets a channel to the recorder (one end of a
SOCK_SEQPACKET socket pair; the server passes the other end to the recorder). The child
asks for its claim and, once its code has run, sends its end; the recorder gathers what
all channels asked in one round into one transaction per kind and answers each. A child
whose recorder cannot answer (it failed, or is gone) claims or records itself, as a
child without a recorder always does, so the recorder only ever makes a try cheaper.
"""

from __future__ import annotations

import logging
import os
import pickle
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradewind.db import session_scope, stop_lending
from tradewind.processes import live_for_a_client, name_this_process
from worker.task_runner import (
    Claim,
    EndRecord,
    EndWritten,
    TaskRunner,
    TryRequest,
    current_state,
    write_end,
    write_log_of_unrecorded,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from worker.try_process import WarmParent

logger = logging.getLogger(__name__)

# A message on a channel is one packet, at most about the socket's send buffer (some
# 200 KB by default on Linux): a larger end (big XComs) fails to send, and its child
# writes it itself. Reads take up to this much.
MAX_MESSAGE = 1 << 20
TAKEN = "taken"  # the answer to a claim of a try that another process has


@dataclass
class RecorderLink:
    """The fork server's side of its recorder."""

    pid: int
    control: socket.socket  # new channels go to the recorder over this
    pidfd: int  # readable once the recorder has ended

    @classmethod
    def start(cls, parent: WarmParent) -> RecorderLink:
        """Fork the recorder from this (warm) process."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the recorder never returns

            def life() -> None:
                name_this_process("tw-recorder")
                ours.close()
                # Hold nothing whose closing others wait for: the clients' sockets, a
                # standby's request pipe (when this replaces a recorder that died).
                parent.close_private_fds()
                _Recorder(parent, theirs).loop()

            live_for_a_client("recorder", life)
        theirs.close()
        return cls(pid, ours, os.pidfd_open(pid))

    @property
    def fds(self) -> list[int]:
        """Descriptors the fork server's children must not keep open."""
        return [self.control.fileno(), self.pidfd]

    def channel(self) -> socket.socket | None:
        """A new channel for a child about to be forked (the recorder has the other
        end); None if the recorder is gone."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self.control, [b"c"], [theirs.fileno()])
        except OSError:
            ours.close()
            return None
        finally:
            theirs.close()
        return ours

    def reap(self) -> int:
        """Wait for the ended recorder; its wait status."""
        os.close(self.pidfd)
        self.control.close()
        return os.waitpid(self.pid, 0)[1]

    def stop(self) -> None:
        """Close the control socket: the recorder exits once its last channel closes."""
        self.control.close()


# --- in a child -------------------------------------------------------------------------


def ask(channel: socket.socket, message: tuple[Any, ...]) -> Any:
    """Send one request to the recorder and wait for its answer; None if it could not
    answer (the caller then does the work itself)."""
    try:
        channel.send(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        answer = channel.recv(MAX_MESSAGE)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return None
    return pickle.loads(answer) if answer else None


def claim_through(
    channel: socket.socket, request: TryRequest, pid: int
) -> Claim | str | None:  # pragma: no cover - runs in children
    """The recorder's claim of ``request`` for process ``pid``: a `Claim`, `TAKEN`, or
    None if the recorder could not claim it."""
    answer = ask(channel, ("claim", request, pid))
    return answer if isinstance(answer, Claim) or answer == TAKEN else None


def end_through(
    channel: socket.socket, record: EndRecord
) -> EndWritten | None:  # pragma: no cover - runs in children
    """`TaskRunner.end_writer` for a child with a recorder."""
    answer = ask(channel, ("end", record))
    return answer if isinstance(answer, EndWritten) else None


# --- the recorder -----------------------------------------------------------------------


class _Recorder:  # pragma: no cover - runs in the recorder process
    def __init__(self, parent: WarmParent, control: socket.socket) -> None:
        self.parent = parent
        # The same few statements for every try: prepared on its own connections.
        stop_lending(parent.engine)
        self.runner = TaskRunner(
            parent.factory, parent.settings, dags=parent.dags, hostname=parent.hostname
        )
        self.control: socket.socket | None = control
        self.channels: set[socket.socket] = set()
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ, None)

    def loop(self) -> None:
        """Serve until the server has gone and every channel has closed."""
        while self.control is not None or self.channels:
            claims: list[tuple[socket.socket, TryRequest, int]] = []
            ends: list[tuple[socket.socket, EndRecord]] = []
            for key, _ in self.selector.select(timeout=5.0):
                channel = key.data
                if channel is None:
                    self._take_channel()
                    continue
                # An earlier event of this round may have closed it.
                message = self._read(channel) if channel in self.channels else None
                if message is None:
                    continue
                if message[0] == "claim":
                    claims.append((channel, message[1], message[2]))
                elif message[0] == "end":
                    ends.append((channel, message[1]))
            # Ends first: each one recorded frees a slot for the scheduler's next try.
            self._answer_all(ends, self._write_ends([record for _, record in ends]))
            self._answer_all(claims, self._claim([(r, pid) for _, r, pid in claims]))

    def _take_channel(self) -> None:
        assert self.control is not None
        try:
            _, fds, _, _ = socket.recv_fds(self.control, 16, 1)
        except OSError:
            fds = []
        if not fds:  # the server has gone: serve the channels left, then exit
            self.selector.unregister(self.control)
            self.control.close()
            self.control = None
            return
        channel = socket.socket(fileno=fds[0])
        self.channels.add(channel)
        self.selector.register(channel, selectors.EVENT_READ, channel)

    def _read(self, channel: socket.socket) -> tuple[Any, ...] | None:
        try:
            data = channel.recv(MAX_MESSAGE)
        except OSError:
            data = b""
        if not data:  # the child has ended
            self._close(channel)
            return None
        message: tuple[Any, ...] = pickle.loads(data)
        return message

    def _close(self, channel: socket.socket) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self.selector.unregister(channel)
            channel.close()

    def _answer_all(self, asked: list[Any], answers: list[Any]) -> None:
        for item, answer in zip(asked, answers, strict=True):
            try:
                item[0].send(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
            except OSError:
                # It died waiting, or the answer is too large for one message: closing
                # the channel tells a living child to do the work itself.
                self._close(item[0])

    def _claim(self, tries: list[tuple[TryRequest, int]]) -> list[Claim | str | None]:
        """Claim each (request, pid) in one transaction: its `Claim`, or `TAKEN`; all
        None if the transaction failed (each child then claims its own)."""

        def claim(session: Session, item: tuple[TryRequest, int]) -> Claim | str:
            request, pid = item
            return self.runner.claim_in(session, request, pid=pid) or TAKEN

        return self._in_one_transaction(tries, claim, "claim")

    def _write_ends(self, records: list[EndRecord]) -> list[EndWritten | None]:
        """Write each end in one transaction; all None if it failed (each child then
        writes its own)."""
        wake = not self.parent.reports_ends

        def write(session: Session, record: EndRecord) -> EndWritten:
            state = write_end(session, record, wake=wake)
            if state is not None:
                return EndWritten(state, recorded=True)
            write_log_of_unrecorded(session, record)
            current = current_state(session, record.ti_id) or record.state
            return EndWritten(current, recorded=False)

        return self._in_one_transaction(records, write, "record the ends of")

    def _in_one_transaction(
        self, items: list[Any], work: Callable[[Session, Any], Any], what: str
    ) -> list[Any]:
        if not items:
            return []
        try:
            with session_scope(self.parent.factory) as session:
                return [work(session, item) for item in items]
        except Exception:
            logger.exception("Could not %s %s tries; their processes do it", what, len(items))
            return [None] * len(items)


__all__ = ["TAKEN", "RecorderLink", "claim_through", "end_through"]
