"""What every list endpoint shares: the session, pagination, ordering and patterns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic_core
from fastapi import Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tradewind.models.base import JsonText
from webserver.api.schemas import DB_INT_MAX


async def db_session(request: Request) -> AsyncIterator[Session]:
    """A session per request; routes that write commit it themselves.

    Async, so that making the session costs no hop to the thread pool (it connects only
    when the route first uses it). Closing rolls back whatever the route left open,
    which is I/O: done in the pool, and only when a connection was taken."""
    session: Session = request.app.state.factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


DbSession = Annotated[Session, Depends(db_session)]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


async def refuse_nul_in_url(request: Request) -> None:
    """A router dependency for a route's path and query: a NUL character is a 400, not a
    500 from the database. URLs decode to valid strings, so only NUL needs checking."""
    query = [text for item in request.query_params.multi_items() for text in item]
    if any("\x00" in part for part in [request.scope["path"], *query]):
        raise bad_request("A NUL character is not allowed in a URL")


async def page(
    request: Request,
    limit: Annotated[int, Query(ge=0, description="Items per page (capped)")] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> Page:
    """``limit`` is capped silently at the configured maximum, as Airflow does."""
    return Page(min(limit, request.app.state.settings.api_maximum_page_limit), offset)


Paging = Annotated[Page, Depends(page)]


def with_full_allow(request: Request, exc: StarletteHTTPException) -> StarletteHTTPException:
    """A 405 naming every method its path allows: the router names only those of the
    first route on the path (`/api/v2/pools/x` would say ``GET`` alone)."""
    if exc.status_code != 405:
        return exc
    allowed = allowed_methods(request.app.openapi(), request.url.path)
    if allowed is None:
        return exc
    return StarletteHTTPException(
        405, exc.detail, {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    )


def allowed_methods(document: Mapping[str, Any], path: str) -> list[str] | None:
    """The methods the OpenAPI ``document`` declares for ``path`` (plus HEAD wherever GET
    is), from its most specific template: literal segments win over parameters, as the
    routes are declared (``/backfills/dry_run`` before ``/backfills/{backfill_id}``).
    None if no template matches."""
    wanted = path.rstrip("/").split("/")
    best: tuple[tuple[bool, ...], set[str]] | None = None
    for template, operations in document.get("paths", {}).items():
        parts = template.rstrip("/").split("/")
        if len(parts) != len(wanted):
            continue
        literal = tuple(not (p.startswith("{") and p.endswith("}")) for p in parts)
        if any(lit and p != w for lit, p, w in zip(literal, parts, wanted, strict=True)):
            continue
        if best is None or literal > best[0]:
            best = (literal, {method.upper() for method in operations if method in _METHODS})
    if best is None:
        return None
    methods = best[1] | ({"HEAD"} if "GET" in best[1] else set())
    return sorted(methods)


_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def not_found(message: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, message)


def bad_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, message)


def conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, message)


@dataclass(frozen=True)
class Ordering:
    """A list's order: the requested names (``-name`` descending) with their columns,
    ending with the tiebreak that makes it total."""

    names: tuple[str, ...]
    columns: tuple[Any, ...]
    descending: tuple[bool, ...]

    def clauses(self) -> list[Any]:
        return [
            c.desc() if d else c.asc() for c, d in zip(self.columns, self.descending, strict=True)
        ]


def ordering(
    order_by: Sequence[str] | None,
    allowed: Mapping[str, InstrumentedAttribute[Any] | ColumnElement[Any]],
    default: Sequence[str],
    tiebreak: InstrumentedAttribute[Any] | ColumnElement[Any],
) -> Ordering:
    """The order the named attributes ask for; unknown names are a 400."""
    names, columns, descending = [], [], []
    for raw in order_by or default:
        name = raw.removeprefix("-")
        column = allowed.get(name)
        if column is None:
            raise bad_request(
                f"Ordering with '{name}' is disallowed or the attribute does not exist on the "
                f"model (allowed: {', '.join(sorted(allowed))})"
            )
        names.append(raw)
        columns.append(column)
        descending.append(raw.startswith("-"))
    return Ordering((*names, "(tiebreak)"), (*columns, tiebreak), (*descending, False))


def order(
    query: Select[Any],
    order_by: Sequence[str] | None,
    allowed: Mapping[str, InstrumentedAttribute[Any] | ColumnElement[Any]],
    default: Sequence[str],
    tiebreak: InstrumentedAttribute[Any] | ColumnElement[Any],
) -> Select[Any]:
    """Order by the named attributes (``-name`` descending); unknown names are a 400."""
    return query.order_by(*ordering(order_by, allowed, default, tiebreak).clauses())


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
    rows = list(session.scalars(query.limit(paging.limit).offset(paging.offset)))
    return rows, _count(session, query)


def paginate_rows(
    session: Session, query: Select[Any], paging: Page
) -> tuple[list[dict[str, Any]], int]:
    """One page of a column query, as dicts, and the count of every match: one round trip
    while the page has rows (the count rides along as a window function), executed as a
    Core statement (the ORM's loading machinery has nothing to add to plain columns)."""
    counted = query.add_columns(func.count().over().label("_total_entries"))
    result = session.connection().execute(counted.limit(paging.limit).offset(paging.offset))
    keys = list(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result]
    if rows:
        total = rows[0]["_total_entries"]
        for row in rows:
            del row["_total_entries"]
        return rows, int(total)
    nothing_matched = paging.limit > 0 and paging.offset == 0
    return [], 0 if nothing_matched else _count(session, query)


def _count(session: Session, query: Select[Any]) -> int:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return int(total or 0)


class json_array_agg(GenericFunction[Any]):  # noqa: N801 - SQL function names are lowercase
    """The values of a group as a JSON array, read back as a list (None for no rows on
    Postgres, ``[]`` on SQLite): ``json_agg`` or ``json_group_array``."""

    type = JsonText()
    inherit_cache = True


@compiles(json_array_agg, "postgresql")
def _json_array_agg_postgres(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(json_agg({compiler.process(element.clauses, **kw)}) AS TEXT)"


@compiles(json_array_agg, "sqlite")
def _json_array_agg_sqlite(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


def collection(model: type[BaseModel], **fields: Any) -> Response:
    """A collection response serialized straight from plain values (see `present.dag`):
    ``fields`` plus the defaults of ``model``'s optional fields (cursors and the like)."""
    return Response(collection_body(model, **fields), media_type="application/json")


def collection_body(model: type[BaseModel], **fields: Any) -> bytes:
    """The JSON of `collection`."""
    body = {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }
    body.update(fields)
    return pydantic_core.to_json(body)


def json_response(body: BaseModel) -> Response:
    """A response already serialized from its model: FastAPI would otherwise validate
    the returned model a second time against the route's response_model (a large share
    of the time of a big list)."""
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")


def all_of(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(true(), *conditions)
