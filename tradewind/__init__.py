"""Tradewind: write pipelines as Python DAG files; Tradewind schedules and runs them.

The names DAG files use are importable from here::

    from tradewind import DAG, task, TaskGroup, Param, Variable, chain

They load on first use, so ``import tradewind`` stays cheap for every DAG file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "DAG": "tradewind.sdk.dag",
    "dag": "tradewind.sdk.dag",
    "task": "tradewind.sdk.decorators",
    "BaseOperator": "tradewind.sdk.baseoperator",
    "TaskGroup": "tradewind.sdk.taskgroup",
    "task_group": "tradewind.sdk.taskgroup",
    "Param": "tradewind.sdk.params",
    "Variable": "tradewind.sdk.variable",
    "Connection": "tradewind.sdk.connection",
    "chain": "tradewind.sdk.dependencies",
    "cross_downstream": "tradewind.sdk.dependencies",
    "TriggerRule": "tradewind.state",
    "XComArg": "tradewind.sdk.xcom_arg",
    "BaseSensorOperator": "tradewind.sensors",
    "PokeReturnValue": "tradewind.sensors",
    "Asset": "tradewind.sdk.assets",
    "AssetAll": "tradewind.sdk.assets",
    "AssetAny": "tradewind.sdk.assets",
    "Dataset": "tradewind.sdk.assets",
}

__all__ = [
    "DAG",
    "Asset",
    "AssetAll",
    "AssetAny",
    "BaseOperator",
    "BaseSensorOperator",
    "Connection",
    "Dataset",
    "Param",
    "PokeReturnValue",
    "TaskGroup",
    "TriggerRule",
    "Variable",
    "XComArg",
    "__version__",
    "chain",
    "cross_downstream",
    "dag",
    "task",
    "task_group",
]

if TYPE_CHECKING:
    from tradewind.sdk.assets import Asset, AssetAll, AssetAny, Dataset
    from tradewind.sdk.baseoperator import BaseOperator
    from tradewind.sdk.connection import Connection
    from tradewind.sdk.dag import DAG, dag
    from tradewind.sdk.decorators import task
    from tradewind.sdk.dependencies import chain, cross_downstream
    from tradewind.sdk.params import Param
    from tradewind.sdk.taskgroup import TaskGroup, task_group
    from tradewind.sdk.variable import Variable
    from tradewind.sdk.xcom_arg import XComArg
    from tradewind.sensors import BaseSensorOperator, PokeReturnValue
    from tradewind.state import TriggerRule


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradewind' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
