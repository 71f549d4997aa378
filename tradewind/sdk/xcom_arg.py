"""`XComArg`: a reference to another task's output, resolved when the task runs.

``extract()`` in a TaskFlow DAG returns an XComArg; passing it to ``transform(...)``
makes ``extract`` upstream of ``transform`` and hands over its return value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tradewind.sdk.dependencies import DependencyMixin

if TYPE_CHECKING:
    from tradewind.sdk.baseoperator import BaseOperator

RETURN_VALUE = "return_value"


class XComArg(DependencyMixin):
    """The XCom ``key`` (default the return value) of ``operator``."""

    def __init__(self, operator: BaseOperator, key: str = RETURN_VALUE) -> None:
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        """``output["rows"]``: one key of a task with ``multiple_outputs``."""
        return XComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(
            f"the output of task {self.operator.task_id!r} is only known when the DAG runs; "
            "pass it to another task instead of iterating over it in the DAG file"
        )

    def upstream_edge_tasks(self) -> list[BaseOperator]:
        return [self.operator]

    def downstream_edge_tasks(self) -> list[BaseOperator]:
        return [self.operator]

    def resolve(self, context: dict[str, Any]) -> Any:
        """The value, pulled through the running task instance in ``context``."""
        ti = context["ti"]
        return ti.xcom_pull(task_ids=self.operator.task_id, key=self.key)

    def dump(self) -> dict[str, str]:
        return {"task_id": self.operator.task_id, "key": self.key}

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, {self.key!r})"


def find_xcom_args(value: Any) -> Iterator[XComArg]:
    """Every XComArg nested in a value (lists, tuples, sets, dict values)."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from find_xcom_args(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_xcom_args(item)


def resolve_xcom_args(value: Any, context: dict[str, Any]) -> Any:
    """A copy of ``value`` with every nested XComArg replaced by its value."""
    if isinstance(value, XComArg):
        return value.resolve(context)
    if isinstance(value, list):
        return [resolve_xcom_args(v, context) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_xcom_args(v, context) for v in value)
    if isinstance(value, dict):
        return {k: resolve_xcom_args(v, context) for k, v in value.items()}
    return value
