"""Waking the scheduler when there is work: a run was created, a try ended.

On Postgres this is ``NOTIFY tradewind_scheduler`` sent in the same transaction as the
change (so it arrives only once the change is visible). On SQLite, which has no
notifications, the writer sends a datagram to a Unix socket next to the database file
after its commit. Both are hints: a lost one costs at most one poll interval.

A wake-up names the DAG run that changed (its primary key) when there is one, so the
scheduler looks at that run only; an empty one asks it to look at every run. One sent
because a try of the run changed (it ended, or is to run again) says so: such a change
lets no queued run start, so the scheduler need not look at queued runs for it (a run
that it finishes is another matter, which the scheduler sees itself).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)
CHANNEL = "tradewind_scheduler"
_PENDING = "tradewind_wake_scheduler"
_TRY = "t"  # the mark of a wake-up for a try of the run it names


class Wakeups(NamedTuple):
    """What the wake-ups drained at once ask for."""

    runs: set[int] | None  # the runs they name; None: look at every run
    runs_may_start: bool  # one of them was not only about a try


def socket_path(engine: Engine) -> Path | None:
    """Where the scheduler of an SQLite database listens (None for other databases)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return Path(f"{engine.url.database}.wake")


def wake_scheduler(session: Session, run_pk: int | None = None, *, for_a_try: bool = False) -> None:
    """Ask the scheduler to look at run ``run_pk`` (or at everything) once this
    transaction commits; ``for_a_try``: because one of its tries changed, only."""
    payload = "" if run_pk is None else f"{_TRY if for_a_try else ''}{run_pk}"
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )
    else:
        session.info.setdefault(_PENDING, set()).add(payload)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    payloads = session.info.pop(_PENDING, None)
    if not payloads:
        return
    bind = session.get_bind()
    path = socket_path(bind) if isinstance(bind, Engine) else None
    if path is not None:
        send_datagram(path, "" if "" in payloads else ",".join(sorted(payloads)))


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def send_datagram(path: Path, payload: str = "") -> None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.sendto(b"w" + payload.encode(), str(path))


def _run_pks(payload: str) -> set[int] | None:
    """The runs a wake-up names; None when it names none (look at everything)."""
    try:
        return {int(part.removeprefix(_TRY)) for part in payload.split(",")} if payload else None
    except ValueError:
        return None


def _only_tries(payload: str) -> bool:
    return bool(payload) and all(part.startswith(_TRY) for part in payload.split(","))


class WakeListener:
    """The scheduler's end: a file descriptor that becomes readable when woken."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._socket: socket.socket | None = None
        self._connection: Any = None
        self._path = socket_path(engine)

    def open(self) -> int | None:
        try:
            if self._path is not None:
                return self._open_socket(self._path)
            if self.engine.dialect.name == "postgresql":
                return self._open_listen()
        except Exception:
            logger.warning("Wake-ups unavailable; relying on polling", exc_info=True)
        return None

    def _open_socket(self, path: Path) -> int:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(path))
        os.chmod(path, 0o600)
        self._socket = sock
        return sock.fileno()

    def _open_listen(self) -> int:
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        self._connection = psycopg.connect(dsn, autocommit=True)
        self._connection.execute(f"LISTEN {CHANNEL}")
        return int(self._connection.fileno())

    def drain(self) -> Wakeups:
        """Consume pending wake-ups (call when the descriptor was readable): the runs
        they name (None if any asked to look at everything), and whether any was about
        more than a try."""
        payloads: list[str] = []
        if self._socket is not None:
            with contextlib.suppress(BlockingIOError):
                while datagram := self._socket.recv(4096):
                    payloads.append(datagram[1:].decode(errors="replace"))
        if self._connection is not None:
            payloads.extend(
                n.payload for n in self._connection.notifies(timeout=0, stop_after=None)
            )
        runs: set[int] = set()
        may_start = False
        for payload in payloads:
            named = _run_pks(payload)
            if named is None:
                return Wakeups(None, True)
            runs |= named
            may_start = may_start or not _only_tries(payload)
        return Wakeups(runs, may_start)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            if self._path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._path.unlink()
        if self._connection is not None:
            self._connection.close()
