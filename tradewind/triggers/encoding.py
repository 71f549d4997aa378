"""JSON that keeps datetimes and timedeltas: for trigger kwargs, trigger events and the
kwargs a deferred task resumes with, which all pass through a database column."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

_TYPE = "__tw_type"


def encode(value: Any, *, where: str = "the value") -> Any:
    """A JSON-safe form of ``value``; raises TypeError naming the place for values that
    cannot be stored (functions, open files, arbitrary objects)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {_TYPE: "datetime", "value": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TYPE: "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            out[key] = encode(item, where=f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [encode(item, where=f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where}: {type(value).__name__} cannot be stored; use JSON values, "
        "datetimes or timedeltas"
    )


def decode(value: Any) -> Any:
    """The inverse of `encode`."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, dict):
        kind = value.get(_TYPE)
        if kind == "datetime":
            return datetime.fromisoformat(value["value"])
        if kind == "timedelta":
            return timedelta(seconds=value["seconds"])
        return {key: decode(item) for key, item in value.items()}
    return value
