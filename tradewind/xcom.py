"""Storing and reading XCom values (data functions: the caller owns the transaction)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from tradewind.errors import XComError
from tradewind.models import TaskMap, XCom
from tradewind.models.base import utcnow

RETURN_VALUE = "return_value"


def encode_value(value: Any, *, max_bytes: int, where: str) -> Any:
    """Check that a value can be stored: JSON-serialisable and not too large."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise XComError(
            f"{where}: the value is not JSON-serialisable ({exc}); return plain data "
            "(dict, list, str, number, bool, None) or set do_xcom_push=False"
        ) from None
    if len(text.encode()) > max_bytes:
        raise XComError(
            f"{where}: the value is {len(text.encode())} bytes, more than the limit of "
            f"{max_bytes} (TRADEWIND_XCOM_MAX_SIZE_BYTES); store large data elsewhere and "
            "pass a reference"
        )
    return json.loads(text)  # tuples become lists, exactly as a reader will see them


@dataclass(frozen=True, slots=True)
class XComOwner:
    """The task instance an XCom belongs to."""

    dag_run_pk: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int


def store(session: Session, owner: XComOwner, key: str, value: Any) -> None:
    """Set an (already encoded) value and remember its length for mapped tasks."""
    set_xcom(
        session,
        dag_run_pk=owner.dag_run_pk,
        dag_id=owner.dag_id,
        run_id=owner.run_id,
        task_id=owner.task_id,
        map_index=owner.map_index,
        key=key,
        value=value,
    )
    record_map_length(
        session,
        dag_id=owner.dag_id,
        run_id=owner.run_id,
        task_id=owner.task_id,
        map_index=owner.map_index,
        key=key,
        value=value,
    )


def set_xcom(
    session: Session,
    *,
    dag_run_pk: int,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    key: str,
    value: Any,
) -> None:
    existing = session.scalar(
        select(XCom).where(
            XCom.dag_run_id == dag_run_pk,
            XCom.task_id == task_id,
            XCom.map_index == map_index,
            XCom.key == key,
        )
    )
    if existing is None:
        session.add(
            XCom(
                dag_run_id=dag_run_pk,
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
                key=key,
                value=value,
            )
        )
    else:
        existing.value = value
        existing.timestamp = utcnow()


def record_map_length(
    session: Session,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    key: str,
    value: Any,
) -> None:
    """Remember how long a list/dict XCom is, for mapped tasks expanding over it."""
    if not isinstance(value, list | dict):
        return
    row = session.get(TaskMap, (dag_id, run_id, task_id, map_index, key))
    if row is None:
        session.add(
            TaskMap(
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
                key=key,
                length=len(value),
            )
        )
    else:
        row.length = len(value)


def clear_xcoms(session: Session, *, dag_run_pk: int, task_id: str, map_index: int) -> None:
    session.execute(clear_statement(), clear_params(dag_run_pk, task_id, map_index))


@functools.cache
def clear_statement() -> Any:
    """Deletes the XComs of one task instance (of its earlier tries); built once, run
    with `clear_params`."""
    return delete(XCom).where(
        XCom.dag_run_id == bindparam("xcom_run_pk"),
        XCom.task_id == bindparam("xcom_task_id"),
        XCom.map_index == bindparam("xcom_map_index"),
    )


def clear_params(dag_run_pk: int, task_id: str, map_index: int) -> dict[str, Any]:
    return {"xcom_run_pk": dag_run_pk, "xcom_task_id": task_id, "xcom_map_index": map_index}


def get_values(
    session: Session,
    *,
    dag_run_pk: int,
    task_ids: Sequence[str],
    key: str,
    map_indexes: Iterable[int] | None = None,
) -> dict[tuple[str, int], Any]:
    """Values by (task_id, map_index) for one run."""
    query = select(XCom.task_id, XCom.map_index, XCom.value).where(
        XCom.dag_run_id == dag_run_pk, XCom.task_id.in_(task_ids), XCom.key == key
    )
    if map_indexes is not None:
        query = query.where(XCom.map_index.in_(list(map_indexes)))
    return {(t, m): v for t, m, v in session.execute(query)}
