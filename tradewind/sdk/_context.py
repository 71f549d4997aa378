"""Where a DAG or task is being defined: the open `with DAG`/`with TaskGroup` blocks and
the file and line of the user's code that created an object."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradewind.sdk.dag import DAG
    from tradewind.sdk.taskgroup import TaskGroup

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)

# The `with DAG(...)` and `with TaskGroup(...)` blocks open right now, innermost last.
# A DAG file is executed by one thread at a time, so a plain stack is enough.
_dag_stack: list[DAG] = []
_group_stack: list[TaskGroup] = []


def current_dag() -> DAG | None:
    return _dag_stack[-1] if _dag_stack else None


def current_group() -> TaskGroup | None:
    return _group_stack[-1] if _group_stack else None


def push_dag(dag: DAG) -> None:
    _dag_stack.append(dag)


def pop_dag() -> None:
    _dag_stack.pop()


def push_group(group: TaskGroup) -> None:
    _group_stack.append(group)


def pop_group() -> None:
    _group_stack.pop()


def definition_site() -> tuple[str | None, int | None]:
    """File and line of the innermost caller outside the tradewind package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_ROOT) and not filename.startswith("<frozen"):
            return filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


class DagCollector:
    """Collects every DAG created while a DAG file is being imported."""

    active: list[DagCollector] = []

    def __init__(self) -> None:
        self.dags: list[DAG] = []

    def __enter__(self) -> DagCollector:
        DagCollector.active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        DagCollector.active.remove(self)

    @classmethod
    def register(cls, dag: DAG) -> None:
        if cls.active:
            cls.active[-1].dags.append(dag)


# True while the task runner builds one concrete instance of a mapped task: that
# operator belongs to no DAG and must not be registered as a new task.
_unmapping: list[bool] = []


def unmapping() -> bool:
    return bool(_unmapping)


class UnmappingScope:
    def __enter__(self) -> None:
        _unmapping.append(True)

    def __exit__(self, *exc: object) -> None:
        _unmapping.pop()
