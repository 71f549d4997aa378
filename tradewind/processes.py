"""Small helpers for the child processes Tradewind forks (DAG parsing, tries)."""

from __future__ import annotations

import logging
import os
import signal


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
