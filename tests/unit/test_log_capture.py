"""`worker.logs.capture` routes a try's logging and print() into its handler, and a fork
server sets the root logger up so that no try has to change a level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import cast

import pytest

from worker.fork_server import pass_task_logs_through_the_root
from worker.logs import TryLogHandler, capture


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level = root.level
    yield root
    root.setLevel(level)


def test_capture_takes_info_and_print_and_gives_the_root_its_level_back(
    root: logging.Logger,
) -> None:
    root.setLevel(logging.WARNING)
    lines = Lines()

    with capture(cast(TryLogHandler, lines)):
        logging.getLogger("some.operator").info("from logging")
        print("from print")

    assert lines.lines == ["from logging", "from print"]
    assert root.level == logging.WARNING
    assert lines not in root.handlers


def test_capture_at_a_root_already_at_info_clears_no_logger_s_cache(
    root: logging.Logger,
) -> None:
    root.setLevel(logging.INFO)
    other = logging.getLogger("tests.unit.log_capture.other")
    assert other.isEnabledFor(logging.INFO)  # now in its cache
    lines = Lines()

    with capture(cast(TryLogHandler, lines)):
        logging.getLogger("some.operator").info("one line")

    assert lines.lines == ["one line"]
    assert other._cache == {logging.INFO: True}  # a setLevel would have emptied it


def test_a_fork_server_lowers_the_root_to_info_and_its_handlers_keep_their_levels(
    root: logging.Logger,
) -> None:
    root.setLevel(logging.WARNING)
    terminal = logging.StreamHandler()
    terminal.setLevel(logging.WARNING)
    root.addHandler(terminal)
    try:
        pass_task_logs_through_the_root()
        assert root.level == logging.INFO
        assert terminal.level == logging.WARNING

        root.setLevel(logging.DEBUG)
        pass_task_logs_through_the_root()
        assert root.level == logging.DEBUG  # never raised
    finally:
        root.removeHandler(terminal)
