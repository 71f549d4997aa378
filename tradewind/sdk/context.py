"""The template/callable context of a try: ``ds``, ``ti``, ``params``, ``var``, ``conn``..."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tradewind.sdk import macros


class _VariableAccessor:
    """``{{ var.value.name }}`` and ``{{ var.json.name }}``."""

    def __init__(self, deserialize_json: bool) -> None:
        self._json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        from tradewind.sdk.variable import Variable

        return Variable.get(key, deserialize_json=self._json)

    def get(self, key: str, default: Any = None) -> Any:
        from tradewind.sdk.variable import Variable

        return Variable.get(key, default_var=default, deserialize_json=self._json)


class _VariableNamespace:
    value = _VariableAccessor(deserialize_json=False)
    json = _VariableAccessor(deserialize_json=True)


class _ConnectionAccessor:
    """``{{ conn.warehouse.host }}``."""

    def __getattr__(self, conn_id: str) -> Any:
        from tradewind.sdk.connection import Connection

        return Connection.get(conn_id)

    def get(self, conn_id: str, default: Any = None) -> Any:
        from tradewind.errors import ConnectionNotFound
        from tradewind.sdk.connection import Connection

        try:
            return Connection.get(conn_id)
        except ConnectionNotFound:
            return default


def date_context(logical_date: datetime | None) -> dict[str, Any]:
    """The date strings derived from a logical date (absent when there is none)."""
    if logical_date is None:
        return {}
    return {
        "logical_date": logical_date,
        "ds": logical_date.strftime("%Y-%m-%d"),
        "ds_nodash": logical_date.strftime("%Y%m%d"),
        "ts": logical_date.isoformat(),
        "ts_nodash": logical_date.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": logical_date.isoformat().replace("-", "").replace(":", ""),
    }


class OutletEvent:
    """What a task adds to the event of one of its outlets: ``extra`` (JSON)."""

    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}


class OutletEvents(dict[str, OutletEvent]):
    """``context["outlet_events"][asset].extra["rows"] = 42``: metadata for the event a
    successful try records for that outlet (keyed by the asset or its URI)."""

    def __getitem__(self, key: Any) -> OutletEvent:
        uri = getattr(key, "uri", key)
        if not isinstance(uri, str):
            raise KeyError(f"outlet events are keyed by an Asset or its URI, not {key!r}")
        if uri not in self:
            super().__setitem__(uri, OutletEvent())
        return super().__getitem__(uri)


def base_context(
    *,
    dag: Any,
    task: Any,
    ti: Any,
    dag_run: Any,
    params: dict[str, Any],
    logical_date: datetime | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    prev_success: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "dag_run": dag_run,
        "run_id": dag_run.run_id,
        "params": params,
        "data_interval_start": data_interval_start,
        "data_interval_end": data_interval_end,
        "var": _VariableNamespace(),
        "conn": _ConnectionAccessor(),
        "macros": macros,
        "map_index": ti.map_index,
        "task_instance_key_str": f"{dag.dag_id}__{task.task_id}__"
        + (logical_date.strftime("%Y%m%d") if logical_date else dag_run.run_id),
        "inlets": list(task.inlets),
        "outlets": list(task.outlets),
        "outlet_events": OutletEvents(),
        "expanded_ti_count": None,
    }
    context.update(date_context(logical_date))
    if prev_success is not None:
        context.update(prev_success())
    return context
