"""A try's log handler ships its lines to the database while the try runs, beats the
try's heartbeat on time, and stops its shipper when it is closed (once, or again when
logging closes every handler at exit)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.daemons import wait_for
from tests.integration.test_try_process import (
    queued_runs,  # noqa: F401 - a fixture
    side,  # noqa: F401 - a fixture
)
from tradewind.db import session_scope
from tradewind.models import DagRun, LogChunk
from worker.logs import TryIdentity, TryLogHandler


def identity(factory: sessionmaker[Session], run_id: str) -> TryIdentity:
    with session_scope(factory) as session:
        pk = session.scalar(select(DagRun.id).where(DagRun.dag_id == "one"))
    assert pk is not None
    return TryIdentity(pk, "one", run_id, "t0", -1, 1)


def shipped(factory: sessionmaker[Session]) -> str:
    with session_scope(factory) as session:
        return "".join(session.scalars(select(LogChunk.content).order_by(LogChunk.id)))


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("tradewind.task", logging.INFO, __file__, 1, message, None, None)


def test_lines_reach_the_database_while_the_try_runs_and_the_heartbeat_beats(
    session_factory: sessionmaker[Session],
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    beats: list[float] = []
    threads_before = os_threads()
    handler = TryLogHandler(
        session_factory,
        identity(session_factory, queued_runs["one"]),
        log_file=tmp_path / "attempt=1.log",
        heartbeat=lambda: beats.append(time.monotonic()),
        heartbeat_interval=0.2,
        flush_interval=0.05,
    )
    assert os_threads() == threads_before + 1  # the shipper
    try:
        handler.emit(record("first line"))
        wait_for(lambda: "first line" in shipped(session_factory), "the line to be shipped")
        wait_for(lambda: len(beats) >= 2, "two heartbeats")
        handler.emit(record("second line"))
    finally:
        handler.close()
    count = len(beats)
    # Closed: the last line was shipped by `close` itself, and nothing beats any more.
    assert shipped(session_factory).count("second line") == 1
    time.sleep(0.5)
    assert len(beats) == count
    handler.close()  # as logging does for every handler at exit: nothing happens
    assert shipped(session_factory).count("second line") == 1
    wait_for(lambda: os_threads() == threads_before, "the shipper to end")
    assert (tmp_path / "attempt=1.log").read_text().count("line") == 2


def test_a_failing_heartbeat_does_not_stop_the_shipping(
    session_factory: sessionmaker[Session],
    queued_runs: dict[str, str],  # noqa: F811 - the fixture
) -> None:
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise RuntimeError("the database is away")

    handler = TryLogHandler(
        session_factory,
        identity(session_factory, queued_runs["one"]),
        heartbeat=failing,
        heartbeat_interval=0.05,
        flush_interval=0.05,
    )
    try:
        wait_for(lambda: len(calls) >= 2, "two failed heartbeats")
        handler.emit(record("still shipped"))
        wait_for(lambda: "still shipped" in shipped(session_factory), "the line")
    finally:
        handler.close()
