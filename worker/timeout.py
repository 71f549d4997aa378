"""Enforcing a task's ``execution_timeout`` with SIGALRM in the try's main thread."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from tradewind.errors import TaskTimeout

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
