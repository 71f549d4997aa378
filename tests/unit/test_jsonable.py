"""`jsonable`: any value a task's rendered fields or default_args hold, as JSON."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradewind.serialization import jsonable


class Settings(Mapping[str, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def task() -> None:
    pass


CASES: list[tuple[Any, Any]] = [
    (None, None),
    (True, True),
    (3, 3),
    (2.5, 2.5),
    ("text", "text"),
    (datetime(2026, 12, 1, 6, tzinfo=UTC), "2026-12-01T06:00:00+00:00"),
    (timedelta(minutes=5), 300.0),
    ({"a": 1, 2: [3, (4,)]}, {"a": 1, "2": [3, [4]]}),
    (OrderedDict(b=timedelta(seconds=1)), {"b": 1.0}),
    (Settings(x={"y": None}), {"x": {"y": None}}),
    ([1, "two", [3]], [1, "two", [3]]),
    ((1, 2), [1, 2]),
    ({"b", "a"}, ["a", "b"]),
    (frozenset({2, 1}), [1, 2]),
    (task, f"<callable {task.__qualname__}>"),
    (Opaque(), "<opaque>"),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_a_value_becomes_json(value: Any, expected: Any) -> None:
    rendered = jsonable(value)
    assert rendered == expected
    json.dumps(rendered)  # and it is JSON indeed
