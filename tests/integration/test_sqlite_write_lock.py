"""SQLite's write lock: a writer waits its turn (polling in short steps, not with
SQLite's coarse busy handler), gives up at the busy timeout with SQLAlchemy's own
error, and leaves its connection's busy timeout as it found it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from tradewind.db import make_engine, make_session_factory, migrate, read_session, session_scope
from tradewind.settings import get_settings

pytestmark = pytest.mark.integration
INSERT = "INSERT INTO variable (key, val, is_encrypted) VALUES ('k', 'v', 0)"


@pytest.fixture
def two_engines(home: Path) -> Iterator[Callable[[float], tuple[Engine, Engine]]]:
    """Makes two engines on one migrated SQLite file with a given busy timeout."""
    made: list[Engine] = []

    def make(busy_timeout: float) -> tuple[Engine, Engine]:
        url = f"sqlite:///{home / 'lock.db'}"
        settings = get_settings(database_url=url, sqlite_busy_timeout_seconds=busy_timeout)
        made.extend([make_engine(settings), make_engine(settings)])
        migrate(made[-2])
        return made[-2], made[-1]

    yield make
    for engine in made:
        engine.dispose()


@contextlib.contextmanager
def write_lock_held(engine: Engine) -> Iterator[Connection]:
    """A connection of ``engine`` in a write transaction (it holds the lock) until the
    block ends, or until the block commits or rolls it back itself."""
    with engine.connect() as held:
        held.exec_driver_sql("SELECT 1")  # begins: BEGIN IMMEDIATE takes the lock
        yield held
        held.rollback()


def test_a_writer_waits_for_the_lock_and_takes_it_once_it_is_free(
    two_engines: Callable[[float], tuple[Engine, Engine]],
) -> None:
    holder, waiter = two_engines(10.0)
    released = threading.Event()
    with write_lock_held(holder) as held:

        def release() -> None:
            released.wait(10)
            time.sleep(0.2)  # the waiter is trying by now
            held.commit()

        thread = threading.Thread(target=release)
        thread.start()
        try:
            with session_scope(make_session_factory(waiter)) as session:
                released.set()  # from here on the holder may let go
                session.execute(text(INSERT))
        finally:
            released.set()
            thread.join()
    with read_session(make_session_factory(holder)) as session:
        assert session.scalar(text("SELECT val FROM variable WHERE key = 'k'")) == "v"


def test_a_writer_gives_up_at_the_busy_timeout_with_sqlalchemys_error(
    two_engines: Callable[[float], tuple[Engine, Engine]],
) -> None:
    holder, waiter = two_engines(0.5)
    factory = make_session_factory(waiter)
    with (
        write_lock_held(holder),
        pytest.raises(OperationalError, match="database is locked"),
        session_scope(factory) as session,
    ):
        session.execute(text("SELECT 1"))
    with waiter.connect() as conn:
        # The attempts ran with SQLite's busy handler off; it is back for the rest.
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 500


def test_a_reader_does_not_wait_for_a_writer(
    two_engines: Callable[[float], tuple[Engine, Engine]],
) -> None:
    holder, reader = two_engines(10.0)
    with write_lock_held(holder), read_session(make_session_factory(reader)) as session:
        assert session.scalar(text("SELECT count(*) FROM variable")) == 0
