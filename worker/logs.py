"""Capturing the log of one try and shipping it to the database while it runs.

A background thread writes buffered lines as `LogChunk` rows every half second (so the
UI and API can follow a running task from any host) and beats the try's heartbeat.
Lines also go to a file under ``$TRADEWIND_HOME/logs`` and, for `dags test`, to the
terminal.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import io
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import insert

from tradewind.db import run_core, session_scope
from tradewind.models import LogChunk
from tradewind.models.base import utcnow
from tradewind.secrets_masker import redact

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

LOG_FORMAT = "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s"
MAX_BUFFER_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class TryIdentity:
    dag_run_pk: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    def log_path(self, logs_folder: Path) -> Path:
        index = "" if self.map_index < 0 else f"/map_index={self.map_index}"
        return (
            logs_folder
            / f"dag_id={self.dag_id}/run_id={self.run_id}/task_id={self.task_id}{index}"
            / f"attempt={self.try_number}.log"
        )


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}+0000"


# One formatter for every try's handler (it keeps no state of a record): made at import,
# in a fork server before its first fork, rather than in each try's child (a Formatter
# validates its format with a regular expression as it is made).
_FORMATTER = _UtcFormatter(LOG_FORMAT)


@functools.cache
def chunk_statement() -> Any:
    """Inserts one chunk of a try's log; a Core insert built once is far cheaper than an
    ORM flush."""
    return insert(LogChunk)


def write_chunk(session: Session, ident: TryIdentity, content: str) -> None:
    """Add one chunk of ``ident``'s log to the session's transaction."""
    run_core(
        session,
        chunk_statement(),
        {
            "dag_run_id": ident.dag_run_pk,
            "dag_id": ident.dag_id,
            "run_id": ident.run_id,
            "task_id": ident.task_id,
            "map_index": ident.map_index,
            "try_number": ident.try_number,
            "content": content,
            "created_at": utcnow(),
        },
    )


class TryLogHandler(logging.Handler):
    """Collects the lines of one try and ships them to the database in chunks."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        ident: TryIdentity,
        *,
        log_file: Path | None = None,
        echo: TextIO | None = None,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_interval: float = 5.0,
        flush_interval: float = 0.5,
    ) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(_FORMATTER)
        self.factory, self.ident = factory, ident
        self.echo = echo
        self._heartbeat, self._heartbeat_interval = heartbeat, heartbeat_interval
        self._flush_interval = flush_interval
        self._buffer: list[str] = []
        self._size = 0
        self._buffer_lock = threading.Lock()
        self._ship_lock = threading.Lock()
        self._file: TextIO | None = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self._file = log_file.open("a", encoding="utf-8")
        # The shipper is a bare thread: a `threading.Thread` ran some hundred lines of
        # Python to start and waited for the new thread to be scheduled, which cost a
        # try's forked child about 60 more copied pages and 0.2 ms of CPU, on its path.
        # `_stop` is held until `close` releases it (the shipper waits on it between
        # rounds), `_stopped` until the shipper has ended.
        self._stop = _thread.allocate_lock()
        self._stop.acquire()
        self._stopped = _thread.allocate_lock()
        self._stopped.acquire()
        self._shipping = True
        _thread.start_new_thread(self._loop, ())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = redact(self.format(record)) + "\n"
        except Exception:
            line = f"<unformattable log record: {record.msg!r}>\n"
        with self._buffer_lock:
            self._buffer.append(line)
            self._size += len(line)
            full = self._size >= MAX_BUFFER_CHARS
        if self.echo is not None:
            self.echo.write(line)
            self.echo.flush()
        if self._file is not None:
            self._file.write(line)
        if full:
            self.ship()

    def _take(self) -> str:
        with self._buffer_lock:
            content, self._buffer, self._size = "".join(self._buffer), [], 0
        return content

    def ship(self) -> None:
        """Write whatever is buffered as one chunk, in its own transaction."""
        failure = None
        with self._ship_lock:
            content = self._take()
            if not content:
                return
            try:
                with session_scope(self.factory) as session:
                    write_chunk(session, self.ident, content)
            except Exception as exc:
                failure = exc
        if failure is not None:
            # Not through `logger`: that would come back into this handler.
            print(
                f"tradewind: could not ship a log chunk of {self.ident}: {failure}",
                file=sys.__stderr__,
            )

    def take(self) -> str:
        """Whatever is buffered, for the caller to write with the try's end (after any
        chunk being shipped now is written, so chunks stay in order)."""
        with self._ship_lock:
            return self._take()

    def put_back(self, content: str) -> None:
        """Buffer again, ahead of anything since, what `take` gave and was not written."""
        if content:
            with self._buffer_lock:
                self._buffer.insert(0, content)
                self._size += len(content)

    def _loop(self) -> None:
        try:
            next_beat = time.monotonic() + self._heartbeat_interval
            while not self._stop.acquire(timeout=self._flush_interval):
                self.ship()
                if self._heartbeat is not None and time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self._heartbeat_interval
                    try:
                        self._heartbeat()
                    except Exception:
                        logger.exception("heartbeat of %s failed", self.ident)
        finally:
            self._stopped.release()

    def close(self) -> None:
        if self._shipping:  # logging closes every handler again at exit
            self._shipping = False
            self._stop.release()
            self._stopped.acquire()
        self.ship()
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


class _LineWriter(io.TextIOBase):
    """A text stream that turns each written line into a log record."""

    def __init__(self, target: logging.Logger, level: int) -> None:
        self._target, self._level, self._pending = target, level, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._target.log(self._level, "%s", line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._target.log(self._level, "%s", self._pending)
            self._pending = ""


@contextlib.contextmanager
def capture(handler: TryLogHandler) -> Iterator[None]:
    """Route logging (INFO and up) and print() output of the try into ``handler``."""
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    _set_level(root, min(previous_level, logging.INFO) if previous_level else logging.INFO)
    stdout = _LineWriter(logging.getLogger("tradewind.task.stdout"), logging.INFO)
    stderr = _LineWriter(logging.getLogger("tradewind.task.stderr"), logging.WARNING)
    # The terminal echo of `dags test` must not see these lines twice.
    quiet = [h for h in root.handlers if h is not handler and _writes_to_terminal(h)]
    for h in quiet:
        root.removeHandler(h)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            yield
            stdout.flush()
            stderr.flush()
    finally:
        for h in quiet:
            root.addHandler(h)
        root.removeHandler(handler)
        _set_level(root, previous_level)


def _set_level(logger: logging.Logger, level: int) -> None:
    """Only if it changes: every `setLevel` clears the cache of every logger in the
    process, and in a try's forked child that writes to (copies) each of their pages."""
    if logger.level != level:
        logger.setLevel(level)


def _writes_to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )
