"""Cursor pagination (``?cursor=``) of the run and task-instance lists, as Airflow 3 has it.

A cursor names a row's place in the list's order: the values of its ordering columns
(the tiebreak last, so the place is unique) and which way to go from there. A page is
then the rows strictly beyond that place, found by a comparison on those columns rather
than by skipping ``offset`` rows, so it stays right while rows are added and costs the
same on the last page as on the first. ``cursor=`` (empty) asks for the first page.

The answer carries ``next_cursor`` (None on the last page), ``previous_cursor`` (None on
the first), and ``total_entries`` counted up to ``TOTAL_ENTRIES_LIMIT`` only.

Columns that may be NULL sort their NULLs last going up and first going down, on both
databases (Postgres's own default; SQLite's is the opposite), so that the comparison
agrees with the order.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from tradewind.models.base import JsonText
from webserver.api.common import Ordering, bad_request
from webserver.api.schemas import DB_INT_MAX

TOTAL_ENTRIES_LIMIT = 50_000
_KEY = "_cursor_key_"


@dataclass(frozen=True)
class CursorPage:
    rows: list[dict[str, Any]]
    total_entries: int
    next_cursor: str | None
    previous_cursor: str | None

    def fields(self) -> dict[str, Any]:
        """The collection fields besides the items."""
        return {
            "total_entries": self.total_entries,
            "total_entries_limit": TOTAL_ENTRIES_LIMIT,
            "next_cursor": self.next_cursor,
            "previous_cursor": self.previous_cursor,
        }


@dataclass(frozen=True)
class _Place:
    backwards: bool
    values: list[Any]


def cursor_page(
    session: Session, query: Select[Any], ordering: Ordering, cursor: str, limit: int
) -> CursorPage:
    """The page of ``query`` (not yet ordered) that ``cursor`` points to."""
    place = _decode(cursor, ordering) if cursor else None
    backwards = place is not None and place.backwards
    keyed = query.add_columns(
        *(column.label(f"{_KEY}{i}") for i, column in enumerate(ordering.columns))
    )
    if place is not None:
        keyed = keyed.where(_beyond(ordering, place.values, backwards=backwards))
    keyed = keyed.order_by(*_clauses(ordering, backwards=backwards)).limit(limit + 1)
    found = [dict(row) for row in session.execute(keyed).mappings()]
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
    count = len(ordering.columns)
    places = [[row.pop(f"{_KEY}{i}") for i in range(count)] for row in found]
    if backwards:
        following = _encode(ordering, places[-1], backwards=False) if places else None
        preceding = _encode(ordering, places[0], backwards=True) if places and more else None
    else:
        following = _encode(ordering, places[-1], backwards=False) if more else None
        preceding = (
            _encode(ordering, places[0], backwards=True) if places and place is not None else None
        )
    capped = query.order_by(None).limit(TOTAL_ENTRIES_LIMIT).subquery()
    total = session.scalar(select(func.count()).select_from(capped)) or 0
    return CursorPage(found, int(total), following, preceding)


def _clauses(ordering: Ordering, *, backwards: bool) -> list[Any]:
    clauses = []
    for column, descending in zip(ordering.columns, ordering.descending, strict=True):
        if descending != backwards:
            clauses.append(column.desc().nulls_first())
        else:
            clauses.append(column.asc().nulls_last())
    return clauses


def _beyond(ordering: Ordering, values: list[Any], *, backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order (before them, ``backwards``)."""
    alternatives = []
    same_so_far: list[ColumnElement[bool]] = []
    for column, descending, value in zip(
        ordering.columns, ordering.descending, values, strict=True
    ):
        if descending != backwards:  # going down, NULLs first
            after = column.is_not(None) if value is None else column < value
        else:  # going up, NULLs last
            after = false() if value is None else or_(column > value, column.is_(None))
        alternatives.append(and_(true(), *same_so_far, after))
        same_so_far.append(column.is_(None) if value is None else column == value)
    return or_(*alternatives)


def _encode(ordering: Ordering, values: list[Any], *, backwards: bool) -> str:
    payload = {
        "order": list(ordering.names),
        "back": backwards,
        "at": [{"dt": v.isoformat()} if isinstance(v, datetime) else {"v": v} for v in values],
    }
    text = json.dumps(payload, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, ordering: Ordering) -> _Place:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        payload = json.loads(text)
        values = [
            datetime.fromisoformat(item["dt"]) if "dt" in item else item["v"]
            for item in payload["at"]
        ]
        order, backwards = payload["order"], payload["back"]
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise bad_request(
            "Invalid cursor: pass back the next_cursor or previous_cursor of an earlier page "
            "(or an empty cursor for the first)"
        ) from exc
    if order != list(ordering.names) or len(values) != len(ordering.columns):
        raise bad_request(
            "The cursor belongs to a different order_by; start again with an empty cursor"
        )
    if not all(_fits(c, v) for c, v in zip(ordering.columns, values, strict=True)):
        raise bad_request("Invalid cursor: its values do not fit the columns it orders by")
    return _Place(bool(backwards), values)


def _fits(column: Any, value: Any) -> bool:
    """Whether the database can compare ``column`` with a cursor's ``value`` (a forged
    cursor must be a 400, not a database error)."""
    if value is None or isinstance(column.type, JsonText):
        return True
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return True
    if expected is int:
        return type(value) is int and abs(value) <= DB_INT_MAX
    if expected is float:
        return type(value) in (int, float)
    if expected is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    if expected is str:
        return isinstance(value, str) and "\x00" not in value
    return isinstance(value, expected)


CURSOR_HELP = (
    "Cursor pagination: empty for the first page, then the next_cursor or previous_cursor "
    "of the page before; offset is ignored and total_entries counts up to 50,000"
)
