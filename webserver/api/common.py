"""What every list endpoint shares: the session, pagination, ordering and patterns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session


def db_session(request: Request) -> Iterator[Session]:
    """A session per request; routes that write commit it themselves."""
    session: Session = request.app.state.factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(db_session)]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def page(
    request: Request,
    limit: Annotated[int, Query(ge=0, description="Items per page (capped)")] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    """``limit`` is capped silently at the configured maximum, as Airflow does."""
    return Page(min(limit, request.app.state.settings.api_maximum_page_limit), offset)


Paging = Annotated[Page, Depends(page)]


def not_found(message: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, message)


def bad_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, message)


def conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, message)


def order(
    query: Select[Any],
    order_by: Sequence[str] | None,
    allowed: Mapping[str, InstrumentedAttribute[Any] | ColumnElement[Any]],
    default: Sequence[str],
    tiebreak: InstrumentedAttribute[Any] | ColumnElement[Any],
) -> Select[Any]:
    """Order by the named attributes (``-name`` descending); unknown names are a 400."""
    clauses = []
    for raw in order_by or default:
        descending = raw.startswith("-")
        name = raw.removeprefix("-")
        column = allowed.get(name)
        if column is None:
            raise bad_request(
                f"Ordering with '{name}' is disallowed or the attribute does not exist on the "
                f"model (allowed: {', '.join(sorted(allowed))})"
            )
        clauses.append(column.desc() if descending else column.asc())
    return query.order_by(*clauses, tiebreak)


def matches(column: InstrumentedAttribute[Any], pattern: str | None) -> ColumnElement[bool]:
    """Airflow's ``*_pattern``: case-insensitive substring, ``|`` for or, ``~`` for all."""
    if pattern is None:
        return true()
    if pattern == "~":
        return true()
    parts = [p for p in pattern.split("|") if p]
    if not parts:
        return false()
    return or_(*(column.ilike(f"%{part}%") for part in parts))


def starts_with(column: InstrumentedAttribute[Any], pattern: str | None) -> ColumnElement[bool]:
    """Airflow's ``*_prefix_pattern``: case-sensitive prefix, ``|`` for or, ``~`` for all."""
    if pattern is None or pattern == "~":
        return true()
    parts = [p for p in pattern.split("|") if p]
    # substr, not LIKE: SQLite's LIKE ignores case.
    prefixes = (func.substr(column, 1, len(part)) == part for part in parts)
    return or_(*prefixes) if parts else false()


def paginate(session: Session, query: Select[Any], paging: Page) -> tuple[list[Any], int]:
    """One page of ``query`` and the count of every match."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.scalars(query.limit(paging.limit).offset(paging.offset)))
    return rows, int(total or 0)


def json_response(body: BaseModel) -> Response:
    """A response already serialized from its model: FastAPI would otherwise validate
    the returned model a second time against the route's response_model (a large share
    of the time of a big list)."""
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")


def all_of(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(true(), *conditions)
