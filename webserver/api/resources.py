"""Variables, connections and pools (managed by the op role and above), and import
errors. Secrets are encrypted at rest and never returned in clear: connection
passwords and secret-looking keys of connection extras and of variables read ``***``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tradewind.models import ConnectionModel, ParseImportError, Pool, TaskInstance, VariableModel
from tradewind.sdk.variable import looks_secret
from tradewind.state import TaskInstanceState
from tradewind.variables import read_variable, write_connection, write_variable
from webserver.api import schemas
from webserver.api.common import (
    DbSession,
    Paging,
    bad_request,
    conflict,
    matches,
    not_found,
    order,
    paginate,
    refuse_nul_in_url,
    starts_with,
)
from webserver.security import Op, Viewer

router = APIRouter(
    dependencies=[Depends(refuse_nul_in_url)], responses=schemas.errors(400, 401, 403)
)
MASK = "***"
DEFAULT_POOL = "default_pool"
TI = TaskInstanceState


def _mask_mask(update_mask: list[str] | None, body: Any, allowed: set[str]) -> set[str]:
    """The fields a PATCH applies: those in the mask (if given) that the body set."""
    fields = set(body.model_fields_set)
    if update_mask is None:
        return fields
    if unknown := set(update_mask) - allowed:
        raise bad_request(f"Invalid field(s) in update_mask: {', '.join(sorted(unknown))}")
    return fields & set(update_mask)


# --- variables --------------------------------------------------------------------------------

VARIABLE_ORDER: dict[str, Any] = {
    "key": VariableModel.key,
    "id": VariableModel.id,
    "_val": VariableModel.val,
    "description": VariableModel.description,
    "is_encrypted": VariableModel.is_encrypted,
}


def present_variable(request: Request, row: VariableModel) -> schemas.VariableResponse:
    value = MASK if looks_secret(row.key) else read_variable(request.app.state.settings, row)
    return schemas.VariableResponse(
        key=row.key, value=value, description=row.description, is_encrypted=row.is_encrypted
    )


def _find_variable(session: Session, key: str) -> VariableModel:
    row = session.scalar(select(VariableModel).where(VariableModel.key == key))
    if row is None:
        raise not_found(f"The Variable with key: `{key}` was not found")
    return row


def _text(value: Any) -> str:
    """Variables hold text; other JSON values are stored encoded (read back as text)."""
    if not isinstance(value, str):
        return json.dumps(value)
    if "\x00" in value or _has_surrogate(value):
        raise bad_request("value: a NUL character or a lone surrogate cannot be stored")
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


@router.get("/variables", response_model=schemas.VariableCollectionResponse, tags=["Variable"])
def get_variables(
    request: Request,
    session: DbSession,
    _: Viewer,
    paging: Paging,
    variable_key_pattern: str | None = None,
    variable_key_prefix_pattern: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> schemas.VariableCollectionResponse:
    query = select(VariableModel).where(
        matches(VariableModel.key, variable_key_pattern),
        starts_with(VariableModel.key, variable_key_prefix_pattern),
    )
    query = order(query, order_by, VARIABLE_ORDER, ["id"], VariableModel.id)
    rows, total = paginate(session, query, paging)
    return schemas.VariableCollectionResponse(
        variables=[present_variable(request, r) for r in rows], total_entries=total
    )


@router.get(
    "/variables/{variable_key}",
    response_model=schemas.VariableResponse,
    responses=schemas.errors(404),
    tags=["Variable"],
)
def get_variable(
    request: Request, variable_key: str, session: DbSession, _: Viewer
) -> schemas.VariableResponse:
    return present_variable(request, _find_variable(session, variable_key))


@router.post(
    "/variables",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.VariableResponse,
    responses=schemas.errors(409),
    tags=["Variable"],
)
def post_variable(
    request: Request, body: schemas.VariableBody, session: DbSession, _: Op
) -> schemas.VariableResponse:
    if session.scalar(select(VariableModel.id).where(VariableModel.key == body.key)):
        raise conflict(f"The Variable with key: `{body.key}` already exists")
    settings = request.app.state.settings
    row = write_variable(session, settings, body.key, _text(body.value), body.description)
    session.commit()
    return present_variable(request, row)


@router.patch(
    "/variables/{variable_key}",
    response_model=schemas.VariableResponse,
    responses=schemas.errors(404),
    tags=["Variable"],
)
def patch_variable(
    request: Request,
    variable_key: str,
    body: schemas.VariableBody,
    session: DbSession,
    _: Op,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> schemas.VariableResponse:
    if body.key != variable_key:
        raise bad_request("Invalid body, key from request body doesn't match uri parameter")
    row = _find_variable(session, variable_key)
    fields = _mask_mask(update_mask, body, {"value", "description"})
    settings = request.app.state.settings
    value = _text(body.value) if "value" in fields else read_variable(settings, row)
    description = body.description if "description" in fields else row.description
    write_variable(session, settings, row.key, value or "", description)
    if "description" in fields and body.description is None:
        row.description = None
    session.commit()
    return present_variable(request, row)


@router.delete(
    "/variables/{variable_key}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=schemas.errors(404),
    tags=["Variable"],
)
def delete_variable(variable_key: str, session: DbSession, _: Op) -> Response:
    session.delete(_find_variable(session, variable_key))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- connections ------------------------------------------------------------------------------

CONNECTION_ORDER: dict[str, Any] = {
    "conn_id": ConnectionModel.conn_id,
    "connection_id": ConnectionModel.conn_id,
    "conn_type": ConnectionModel.conn_type,
    "description": ConnectionModel.description,
    "host": ConnectionModel.host,
    "port": ConnectionModel.port,
    "id": ConnectionModel.id,
}


def masked_extra(request: Request, row: ConnectionModel) -> str | None:
    """The extra JSON with the values of secret-looking keys replaced by ``***``."""
    if row.extra is None:
        return None
    from tradewind.crypto import decrypt

    text = decrypt(request.app.state.settings, row.extra) if row.is_extra_encrypted else row.extra
    try:
        data = json.loads(text)
    except ValueError:
        return MASK  # not JSON: cannot tell which part is secret
    if isinstance(data, dict):
        data = {k: MASK if looks_secret(str(k)) else v for k, v in data.items()}
    return json.dumps(data)


def present_connection(request: Request, row: ConnectionModel) -> schemas.ConnectionResponse:
    return schemas.ConnectionResponse(
        connection_id=row.conn_id,
        conn_type=row.conn_type,
        description=row.description,
        host=row.host,
        login=row.login,
        schema_=row.schema,
        port=row.port,
        password=MASK if row.password is not None else None,
        extra=masked_extra(request, row),
    )


def _find_connection(session: Session, connection_id: str) -> ConnectionModel:
    row = session.scalar(select(ConnectionModel).where(ConnectionModel.conn_id == connection_id))
    if row is None:
        raise not_found(f"The Connection with connection_id: `{connection_id}` was not found")
    return row


def _check_extra(extra: str | None) -> None:
    if extra is None:
        return
    try:
        json.loads(extra)
    except ValueError:
        raise bad_request("extra: must be a JSON document (as text)") from None


def _connection_fields(body: schemas.ConnectionBody, fields: set[str]) -> dict[str, Any]:
    names = {"schema_": "schema", "connection_id": "conn_id"}
    out: dict[str, Any] = {"conn_id": body.connection_id}
    for name in fields:
        out[names.get(name, name)] = getattr(body, name)
    return out


@router.get(
    "/connections", response_model=schemas.ConnectionCollectionResponse, tags=["Connection"]
)
def get_connections(
    request: Request,
    session: DbSession,
    _: Viewer,
    paging: Paging,
    connection_id_pattern: str | None = None,
    connection_id_prefix_pattern: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> schemas.ConnectionCollectionResponse:
    query = select(ConnectionModel).where(
        matches(ConnectionModel.conn_id, connection_id_pattern),
        starts_with(ConnectionModel.conn_id, connection_id_prefix_pattern),
    )
    query = order(query, order_by, CONNECTION_ORDER, ["id"], ConnectionModel.id)
    rows, total = paginate(session, query, paging)
    return schemas.ConnectionCollectionResponse(
        connections=[present_connection(request, r) for r in rows], total_entries=total
    )


@router.get(
    "/connections/{connection_id}",
    response_model=schemas.ConnectionResponse,
    responses=schemas.errors(404),
    tags=["Connection"],
)
def get_connection(
    request: Request, connection_id: str, session: DbSession, _: Viewer
) -> schemas.ConnectionResponse:
    return present_connection(request, _find_connection(session, connection_id))


@router.post(
    "/connections",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.ConnectionResponse,
    responses=schemas.errors(409),
    tags=["Connection"],
)
def post_connection(
    request: Request, body: schemas.ConnectionBody, session: DbSession, _: Op
) -> schemas.ConnectionResponse:
    if session.scalar(
        select(ConnectionModel.id).where(ConnectionModel.conn_id == body.connection_id)
    ):
        raise conflict(f"The Connection with connection_id: `{body.connection_id}` already exists")
    _check_extra(body.extra)
    every = set(schemas.ConnectionBody.model_fields) - {"connection_id"}
    row = write_connection(session, request.app.state.settings, _connection_fields(body, every))
    session.commit()
    return present_connection(request, row)


@router.patch(
    "/connections/{connection_id}",
    response_model=schemas.ConnectionResponse,
    responses=schemas.errors(404),
    tags=["Connection"],
)
def patch_connection(
    request: Request,
    connection_id: str,
    body: schemas.ConnectionBody,
    session: DbSession,
    _: Op,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> schemas.ConnectionResponse:
    if body.connection_id != connection_id:
        raise bad_request("The connection_id in the request body does not match the URL parameter")
    _find_connection(session, connection_id)
    allowed = set(schemas.ConnectionBody.model_fields) - {"connection_id"}
    mask = None if update_mask is None else ["schema_" if f == "schema" else f for f in update_mask]
    fields = _mask_mask(mask, body, allowed)
    _check_extra(body.extra if "extra" in fields else None)
    row = write_connection(session, request.app.state.settings, _connection_fields(body, fields))
    session.commit()
    return present_connection(request, row)


@router.delete(
    "/connections/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=schemas.errors(404),
    tags=["Connection"],
)
def delete_connection(connection_id: str, session: DbSession, _: Op) -> Response:
    session.delete(_find_connection(session, connection_id))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- pools ------------------------------------------------------------------------------------

POOL_ORDER: dict[str, Any] = {"id": Pool.id, "pool": Pool.pool, "name": Pool.pool}


def _usage(session: Session, names: list[str]) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(TaskInstance.pool, TaskInstance.state, func.sum(TaskInstance.pool_slots))
        .where(
            TaskInstance.pool.in_(names),
            TaskInstance.state.in_(
                [str(TI.RUNNING), str(TI.QUEUED), str(TI.SCHEDULED), str(TI.DEFERRED)]
            ),
        )
        .group_by(TaskInstance.pool, TaskInstance.state)
    ).all()
    return {(pool, state or ""): int(total or 0) for pool, state, total in rows}


def present_pools(session: Session, rows: list[Pool]) -> list[schemas.PoolResponse]:
    usage = _usage(session, [r.pool for r in rows])
    out = []
    for row in rows:
        running = usage.get((row.pool, str(TI.RUNNING)), 0)
        queued = usage.get((row.pool, str(TI.QUEUED)), 0)
        deferred = usage.get((row.pool, str(TI.DEFERRED)), 0)
        occupied = running + queued + (deferred if row.include_deferred else 0)
        open_slots = -1 if row.slots < 0 else max(row.slots - occupied, 0)
        out.append(
            schemas.PoolResponse(
                name=row.pool,
                slots=row.slots,
                description=row.description,
                include_deferred=row.include_deferred,
                occupied_slots=occupied,
                running_slots=running,
                queued_slots=queued,
                scheduled_slots=usage.get((row.pool, str(TI.SCHEDULED)), 0),
                open_slots=open_slots,
                deferred_slots=deferred,
            )
        )
    return out


def _find_pool(session: Session, name: str) -> Pool:
    row = session.scalar(select(Pool).where(Pool.pool == name))
    if row is None:
        raise not_found(f"The Pool with name: `{name}` was not found")
    return row


@router.get("/pools", response_model=schemas.PoolCollectionResponse, tags=["Pool"])
def get_pools(
    session: DbSession,
    _: Viewer,
    paging: Paging,
    pool_name_pattern: str | None = None,
    pool_name_prefix_pattern: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> schemas.PoolCollectionResponse:
    query = select(Pool).where(
        matches(Pool.pool, pool_name_pattern), starts_with(Pool.pool, pool_name_prefix_pattern)
    )
    query = order(query, order_by, POOL_ORDER, ["id"], Pool.id)
    rows, total = paginate(session, query, paging)
    return schemas.PoolCollectionResponse(pools=present_pools(session, rows), total_entries=total)


@router.get(
    "/pools/{pool_name}",
    response_model=schemas.PoolResponse,
    responses=schemas.errors(404),
    tags=["Pool"],
)
def get_pool(pool_name: str, session: DbSession, _: Viewer) -> schemas.PoolResponse:
    return present_pools(session, [_find_pool(session, pool_name)])[0]


@router.post(
    "/pools",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.PoolResponse,
    responses=schemas.errors(409),
    tags=["Pool"],
)
def post_pool(body: schemas.PoolBody, session: DbSession, _: Op) -> schemas.PoolResponse:
    if session.scalar(select(Pool.id).where(Pool.pool == body.name)):
        raise conflict(f"The Pool with name: `{body.name}` already exists")
    row = Pool(
        pool=body.name,
        slots=body.slots,
        description=body.description,
        include_deferred=body.include_deferred,
    )
    session.add(row)
    session.commit()
    return present_pools(session, [row])[0]


@router.patch(
    "/pools/{pool_name}",
    response_model=schemas.PoolResponse,
    responses=schemas.errors(404),
    tags=["Pool"],
)
def patch_pool(
    pool_name: str,
    body: schemas.PoolPatchBody,
    session: DbSession,
    _: Op,
    update_mask: Annotated[list[str] | None, Query()] = None,
) -> schemas.PoolResponse:
    """Partial bodies are accepted (Airflow insists on a full one for other pools)."""
    row = _find_pool(session, pool_name)
    fields = _mask_mask(
        update_mask, body, {"pool", "name", "slots", "description", "include_deferred"}
    )
    if "pool" in fields and body.pool != pool_name:
        if pool_name == DEFAULT_POOL:
            raise bad_request("Only slots and included_deferred can be modified on Default Pool")
        raise bad_request("The pool name in the request body does not match the URL parameter")
    if pool_name == DEFAULT_POOL and "description" in fields:
        raise bad_request("Only slots and included_deferred can be modified on Default Pool")
    for name in fields - {"pool", "name"}:
        value = getattr(body, name)
        if value is None and name != "description":
            raise bad_request(f"{name}: may not be null")
        setattr(row, name, value)
    session.commit()
    return present_pools(session, [row])[0]


@router.delete(
    "/pools/{pool_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=schemas.errors(404),
    tags=["Pool"],
)
def delete_pool(pool_name: str, session: DbSession, _: Op) -> Response:
    if pool_name == DEFAULT_POOL:
        raise bad_request("Default Pool can't be deleted")
    session.delete(_find_pool(session, pool_name))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- import errors ----------------------------------------------------------------------------

IMPORT_ERROR_ORDER: dict[str, Any] = {
    "id": ParseImportError.id,
    "import_error_id": ParseImportError.id,
    "timestamp": ParseImportError.timestamp,
    "filename": ParseImportError.filename,
    "bundle_name": ParseImportError.bundle_name,
    "stacktrace": ParseImportError.stacktrace,
}


def _import_error(row: ParseImportError) -> schemas.ImportErrorResponse:
    return schemas.ImportErrorResponse(
        import_error_id=row.id,
        timestamp=row.timestamp,
        filename=row.filename,
        bundle_name=row.bundle_name,
        stack_trace=row.stacktrace,
    )


@router.get(
    "/importErrors", response_model=schemas.ImportErrorCollectionResponse, tags=["ImportError"]
)
def get_import_errors(
    session: DbSession,
    _: Viewer,
    paging: Paging,
    filename: str | None = None,
    bundle_name: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> schemas.ImportErrorCollectionResponse:
    query = select(ParseImportError)
    if filename is not None:
        query = query.where(ParseImportError.filename == filename)
    if bundle_name is not None:
        query = query.where(ParseImportError.bundle_name == bundle_name)
    query = order(query, order_by, IMPORT_ERROR_ORDER, ["id"], ParseImportError.id)
    rows, total = paginate(session, query, paging)
    return schemas.ImportErrorCollectionResponse(
        import_errors=[_import_error(r) for r in rows], total_entries=total
    )


@router.get(
    "/importErrors/{import_error_id}",
    response_model=schemas.ImportErrorResponse,
    responses=schemas.errors(404),
    tags=["ImportError"],
)
def get_import_error(
    import_error_id: Annotated[schemas.RowId, Path()], session: DbSession, _: Viewer
) -> schemas.ImportErrorResponse:
    row = session.get(ParseImportError, import_error_id)
    if row is None:
        raise not_found(f"The ImportError with import_error_id: `{import_error_id}` was not found")
    return _import_error(row)
