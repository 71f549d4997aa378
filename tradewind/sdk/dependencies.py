"""`>>`, `<<`, `chain` and `cross_downstream` for tasks, task groups and XCom args."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from tradewind.errors import DagDefinitionError

if TYPE_CHECKING:
    from tradewind.sdk.baseoperator import BaseOperator


class DependencyMixin:
    """Anything that can stand on either side of ``>>``: a task, a group, an XCom arg."""

    def upstream_edge_tasks(self) -> list[BaseOperator]:
        """The tasks that an edge *into* this node attaches to (a group's roots)."""
        raise NotImplementedError

    def downstream_edge_tasks(self) -> list[BaseOperator]:
        """The tasks that an edge *out of* this node starts from (a group's leaves)."""
        raise NotImplementedError

    def set_downstream(self, other: Any) -> None:
        for node in _nodes(other):
            link(self, node)

    def set_upstream(self, other: Any) -> None:
        for node in _nodes(other):
            link(node, self)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> DependencyMixin:
        # [a, b] >> self
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> DependencyMixin:
        # [a, b] << self
        self.set_downstream(other)
        return self


def _nodes(other: Any) -> list[DependencyMixin]:
    if isinstance(other, DependencyMixin):
        return [other]
    if isinstance(other, Sequence | set | frozenset) and not isinstance(other, str):
        result = []
        for item in other:
            result.extend(_nodes(item))
        return result
    raise DagDefinitionError(
        f"cannot set a dependency on {other!r}: expected a task, a task group, an XCom arg "
        "or a list of them"
    )


def link(upstream: DependencyMixin, downstream: DependencyMixin) -> None:
    for up in upstream.downstream_edge_tasks():
        for down in downstream.upstream_edge_tasks():
            up.add_downstream_task(down)


def chain(*elements: Any) -> None:
    """Chain tasks in order; two adjacent lists must have the same length (paired up).

    Example: ``chain(extract, [clean_a, clean_b], [train_a, train_b], report)``.
    """
    for left, right in pairwise(elements):
        left_is_list = isinstance(left, Sequence) and not isinstance(left, str)
        right_is_list = isinstance(right, Sequence) and not isinstance(right, str)
        if left_is_list and right_is_list:
            if len(left) != len(right):
                raise DagDefinitionError(
                    f"chain() got adjacent lists of different lengths ({len(left)} and "
                    f"{len(right)}); pair them up or use cross_downstream()"
                )
            for a, b in zip(left, right, strict=True):
                link_any(a, b)
        else:
            link_any(left, right)


def link_any(upstream: Any, downstream: Any) -> None:
    for up in _nodes(upstream):
        for down in _nodes(downstream):
            link(up, down)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Sequence[Any] | Any) -> None:
    """Make every task in ``from_tasks`` upstream of every task in ``to_tasks``."""
    for task in from_tasks:
        link_any(task, to_tasks)
