"""Small helpers for the child processes Tradewind forks (DAG parsing, tries)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
from collections.abc import Callable
from typing import NoReturn

logger = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


def describe_exit(status: int) -> str:
    """A wait status in words: ``killed by SIGKILL`` or ``exit code 3``."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:
            return f"killed by signal {number}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to load
        return None


def _prctl(option: int, value: int | bytes) -> None:
    """Linux's prctl for this process; nothing where there is no such call."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.prctl(option, value, 0, 0, 0)


def name_this_process(name: str) -> None:
    """Give this process the name that ``ps -o comm``, ``top`` and /proc/PID/comm show
    (at most 15 bytes on Linux). A process forked from a daemon keeps the daemon's
    command line, so without a name a fork server would look like a second scheduler."""
    _prctl(_PR_SET_NAME, name.encode()[:15])


def set_parent_death_signal(sig: signal.Signals) -> None:
    """Have the kernel send ``sig`` to this process when the thread that forked it ends
    (Linux only; elsewhere nothing happens, and the caller's own watch has to do)."""
    _prctl(_PR_SET_PDEATHSIG, int(sig))


def configure_daemon_logging(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        handler.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def live_for_a_client(what: str, body: Callable[[], None]) -> NoReturn:
    """The whole life of a helper process that serves another (a fork server, its
    recorder): Ctrl-C is the client's to handle, SIGTERM ends it at once; it exits 0 when
    ``body`` returns and 1, with the error logged, if it raises. A forked process must
    never return into its parent's code."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        body()
        code = 0
    except BaseException:
        logger.exception("The %s failed", what)
    finally:
        os._exit(code)
