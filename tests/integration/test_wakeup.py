"""Wake-ups reach the scheduler after commit only, and name the runs that changed."""

from __future__ import annotations

import selectors
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tradewind.db import session_scope
from tradewind.wakeup import WakeListener, Wakeups, wake_scheduler


@pytest.fixture
def listener(engine: Engine) -> Iterator[tuple[WakeListener, int]]:
    wake = WakeListener(engine)
    fd = wake.open()
    assert fd is not None
    try:
        yield wake, fd
    finally:
        wake.close()


def woken(fd: int, timeout: float = 2.0) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def test_a_committed_change_wakes_with_the_runs_it_names(
    listener: tuple[WakeListener, int], session_factory: sessionmaker[Session]
) -> None:
    wake, fd = listener
    with session_scope(session_factory) as session:
        wake_scheduler(session, 7)
        wake_scheduler(session, 12)
    assert woken(fd)
    assert wake.drain() == Wakeups({7, 12}, runs_may_start=True)


def test_wake_ups_only_for_tries_say_that_no_run_may_start_for_them(
    listener: tuple[WakeListener, int], session_factory: sessionmaker[Session]
) -> None:
    wake, fd = listener
    with session_scope(session_factory) as session:
        wake_scheduler(session, 7, for_a_try=True)
        wake_scheduler(session, 12, for_a_try=True)
    assert woken(fd)
    assert wake.drain() == Wakeups({7, 12}, runs_may_start=False)
    with session_scope(session_factory) as session:
        wake_scheduler(session, 7, for_a_try=True)
    with session_scope(session_factory) as session:
        wake_scheduler(session, 9)  # a new or cleared run
    assert woken(fd)
    assert wake.drain() == Wakeups({7, 9}, runs_may_start=True)


def test_a_wake_up_naming_no_run_asks_for_everything(
    listener: tuple[WakeListener, int], session_factory: sessionmaker[Session]
) -> None:
    wake, fd = listener
    with session_scope(session_factory) as session:
        wake_scheduler(session, 3)
        wake_scheduler(session)
    assert woken(fd)
    assert wake.drain().runs is None


def test_a_rolled_back_change_wakes_nobody(
    listener: tuple[WakeListener, int], session_factory: sessionmaker[Session]
) -> None:
    _, fd = listener
    session = session_factory()
    wake_scheduler(session, 5)
    session.rollback()
    session.close()
    assert not woken(fd, timeout=0.3)
