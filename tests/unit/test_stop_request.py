"""A stop request interrupts the task's code, never the claim or the record of a try."""

from __future__ import annotations

import pytest

from tradewind.errors import TaskTerminated
from worker.timeout import StopRequest


def test_a_request_while_the_code_runs_stops_it_at_once() -> None:
    stop = StopRequest()
    with pytest.raises(TaskTerminated, match="bye"), stop.stoppable():
        stop.request("bye")


def test_a_request_before_the_code_starts_stops_it_as_it_starts() -> None:
    stop = StopRequest()
    stop.request("early")  # e.g. while the try is being claimed: nothing raised here
    ran = False
    with pytest.raises(TaskTerminated, match="early"), stop.stoppable():
        ran = True
    assert not ran


def test_a_request_after_the_code_ended_is_not_raised_while_recording() -> None:
    stop = StopRequest()
    with stop.stoppable():
        pass
    stop.request("late")  # the runner is recording the end: let it finish
    assert stop.requested
