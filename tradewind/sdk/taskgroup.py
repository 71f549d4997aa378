"""`TaskGroup`: a named, collapsible set of tasks; ids inside are prefixed ``group.task``.

Example::

    with TaskGroup("train") as train:
        for segment in ("retail", "smb"):
            PythonOperator(task_id=segment, python_callable=fit, op_args=[segment])
    prepare >> train >> evaluate      # edges go to the group's roots / from its leaves
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tradewind.errors import DagDefinitionError
from tradewind.sdk import _context
from tradewind.sdk.dag import validate_id
from tradewind.sdk.dependencies import DependencyMixin

if TYPE_CHECKING:
    from tradewind.sdk.baseoperator import BaseOperator
    from tradewind.sdk.dag import DAG


class TaskGroup(DependencyMixin):
    """A group of tasks (and nested groups) shown together and linked as one."""

    def __init__(
        self,
        group_id: str | None,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
    ) -> None:
        site = _context.definition_site()
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        self.default_args = dict(default_args or {})
        self.tooltip, self.ui_color, self.ui_fgcolor = tooltip, ui_color, ui_fgcolor
        self.prefix_group_id = prefix_group_id
        if group_id is None:  # the root group of a DAG
            if dag is None:
                raise DagDefinitionError("the root task group needs a DAG")
            self.dag, self.parent_group, self._group_id = dag, None, None
            return
        validate_id("group_id", group_id, site=site)
        if "." in group_id:
            raise DagDefinitionError(
                f"group_id {group_id!r} may not contain '.', which separates nested groups",
                filename=site[0],
                lineno=site[1],
            )
        parent = parent_group or _context.current_group()
        dag = dag or (parent.dag if parent else _context.current_dag())
        if dag is None:
            raise DagDefinitionError(
                f"task group {group_id!r} was created outside any DAG",
                filename=site[0],
                lineno=site[1],
            )
        if parent is None or parent.dag is not dag:
            parent = dag.task_group
        self.dag, self.parent_group = dag, parent
        self._group_id = parent.child_id(group_id)
        if add_suffix_on_collision:
            self._group_id = _unique(self._group_id, dag)
        parent.add(self, site=site)

    @classmethod
    def root(cls, dag: DAG) -> TaskGroup:
        return cls(None, dag=dag)

    @property
    def group_id(self) -> str | None:
        return self._group_id

    @property
    def node_id(self) -> str:
        return self._group_id or ""

    @property
    def label(self) -> str:
        if self._group_id is None:
            return ""
        return self._group_id.rsplit(".", 1)[-1]

    def child_id(self, label: str) -> str:
        if self._group_id and self.prefix_group_id:
            return f"{self._group_id}.{label}"
        return label

    def add(
        self, node: BaseOperator | TaskGroup, site: tuple[str | None, int | None] = (None, None)
    ) -> None:
        key = node.node_id if isinstance(node, TaskGroup) else node.task_id
        if isinstance(node, TaskGroup) and (
            key in self.children or (self.dag and key in self.dag.task_dict)
        ):
            raise DagDefinitionError(
                f"group id {key!r} is already used in DAG {self.dag.dag_id!r}",
                filename=site[0],
                lineno=site[1],
            )
        self.children[key] = node

    def inherited_default_args(self) -> dict[str, Any]:
        chain: list[TaskGroup] = []
        group: TaskGroup | None = self
        while group is not None:
            chain.append(group)
            group = group.parent_group
        merged: dict[str, Any] = {}
        for g in reversed(chain):
            merged.update(g.default_args)
        return merged

    def iter_tasks(self) -> list[BaseOperator]:
        tasks: list[BaseOperator] = []
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                tasks.extend(child.iter_tasks())
            else:
                tasks.append(child)
        return tasks

    # --- edges: into the roots, out of the leaves -------------------------------------

    def upstream_edge_tasks(self) -> list[BaseOperator]:
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not (t.upstream_task_ids & ids)]

    def downstream_edge_tasks(self) -> list[BaseOperator]:
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not (t.downstream_task_ids & ids)]

    @property
    def roots(self) -> list[BaseOperator]:
        return self.upstream_edge_tasks()

    @property
    def leaves(self) -> list[BaseOperator]:
        return self.downstream_edge_tasks()

    def __enter__(self) -> TaskGroup:
        _context.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _context.pop_group()

    def __repr__(self) -> str:
        return f"<TaskGroup: {self._group_id}>"

    def dump(self) -> dict[str, Any]:
        """The group tree as JSON: the UI draws collapsible groups from it."""
        return {
            "group_id": self._group_id,
            "tooltip": self.tooltip,
            "ui_color": self.ui_color,
            "children": [
                c.dump() if isinstance(c, TaskGroup) else c.task_id for c in self.children.values()
            ],
        }


def _unique(group_id: str, dag: DAG) -> str:
    taken = set(_all_group_ids(dag.task_group))
    if group_id not in taken:
        return group_id
    n = 1
    while f"{group_id}__{n}" in taken:
        n += 1
    return f"{group_id}__{n}"


def _all_group_ids(group: TaskGroup) -> list[str]:
    ids = [group.node_id]
    for child in group.children.values():
        if isinstance(child, TaskGroup):
            ids.extend(_all_group_ids(child))
    return ids


def task_group(group_id: str | Callable[..., Any] | None = None, **group_kwargs: Any) -> Any:
    """Decorator form: calling the function builds its tasks inside a new group.

    Example::

        @task_group
        def train(data):
            return evaluate(fit(data))
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def build(*args: Any, **kwargs: Any) -> Any:
            name = group_id if isinstance(group_id, str) else func.__name__
            with TaskGroup(
                name, add_suffix_on_collision=True, tooltip=func.__doc__ or "", **group_kwargs
            ) as group:
                result = func(*args, **kwargs)
            return group if result is None else result

        return build

    if callable(group_id):
        func, group_id = group_id, None
        return decorate(func)
    return decorate
