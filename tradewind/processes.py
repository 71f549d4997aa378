"""Small helpers for the child processes Tradewind forks (DAG parsing, tries)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import NoReturn

logger = logging.getLogger(__name__)


def describe_exit(status: int) -> str:
    """A wait status in words: ``killed by SIGKILL`` or ``exit code 3``."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:
            return f"killed by signal {number}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


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
