"""`wait_for_database`: how long it waits between attempts, and when it gives up."""

from __future__ import annotations

import pytest

from tradewind import db
from tradewind.errors import DatabaseError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def failing(times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def check(_engine: object) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise DatabaseError("cannot connect to the metadata database at x: refused")

    return calls, check


def test_backs_off_doubling_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    calls, check = failing(6)
    monkeypatch.setattr(db, "check_connection", check)
    clock = Clock()
    attempts = db.wait_for_database(
        object(),  # type: ignore[arg-type]
        120,
        clock=clock,
        sleep=clock.sleep,
    )
    assert attempts == 7 == len(calls)
    assert clock.pauses == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_gives_up_at_the_deadline_with_the_last_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    _, check = failing(1000)
    monkeypatch.setattr(db, "check_connection", check)
    clock = Clock()
    with pytest.raises(DatabaseError, match=r"gave up after \d+ attempts in 10 s: .*refused"):
        db.wait_for_database(object(), 10, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert sum(clock.pauses) == pytest.approx(10)  # the last pause stops at the deadline


def test_answers_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _, check = failing(0)
    monkeypatch.setattr(db, "check_connection", check)
    clock = Clock()
    assert db.wait_for_database(object(), 5, clock=clock, sleep=clock.sleep) == 1  # type: ignore[arg-type]
    assert clock.pauses == []
