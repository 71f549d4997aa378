"""Stopping a try's code from outside: its ``execution_timeout`` (SIGALRM) and a request
to stop (SIGTERM: its worker or executor shuts down, its parent died, or its state was
changed by a user), both raised in the try's main thread.

A stop request raises `TaskTerminated` only while the task's own code runs. One that
arrives while the runner claims or records the try is held until the code starts (it
then stops at once) or dropped once the code has ended, so the try's end is always
recorded.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType

from tradewind.errors import TaskTerminated, TaskTimeout

logger = logging.getLogger(__name__)


@contextmanager
def execution_timeout(seconds: float | None) -> Iterator[None]:
    """Raise `TaskTimeout` inside the block once ``seconds`` have passed."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        logger.warning("execution_timeout is enforced only in a main thread; not here")
        yield
        return

    def _expire(_signum: int, _frame: FrameType | None) -> None:
        raise TaskTimeout(f"the task ran longer than its execution_timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def current_pid() -> int:
    return os.getpid()


class StopRequest:
    """A request to stop the try's code, honoured only inside `stoppable`."""

    def __init__(self) -> None:
        self.requested = False
        self.armed = False
        self.reason = ""

    def request(self, reason: str) -> None:
        """Stop the task's code now if it runs, or as soon as it starts."""
        self.requested, self.reason = True, reason
        if self.armed:
            self.armed = False
            raise TaskTerminated(reason)

    @contextmanager
    def stoppable(self) -> Iterator[None]:
        """The block in which a stop request interrupts the task's code."""
        if self.requested:
            raise TaskTerminated(self.reason)
        self.armed = True
        try:
            yield
        finally:
            self.armed = False


STOP = StopRequest()  # the process's one (a try runs alone in its process)


def request_stop(reason: str) -> None:
    STOP.request(reason)


def stoppable() -> AbstractContextManager[None]:
    return STOP.stoppable()
