"""Dynamic task mapping: ``Operator.partial(...).expand(arg=[...])``.

A mapped task becomes one task instance per element (``map_index`` 0, 1, ...) when the
DAG runs; with several expanded arguments, one per combination (the last argument
varies fastest). The elements come from a literal list or dict, or from an upstream
task's XCom, known only once that task has finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradewind.errors import DagDefinitionError
from tradewind.sdk import _context
from tradewind.sdk._operator_args import BASE_DEFAULTS, accepted_args, merge_default_args
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.dag import reject_unknown
from tradewind.sdk.xcom_arg import XComArg, find_xcom_args

_PLACEMENT_ARGS = ("task_id", "dag", "task_group")


class OperatorPartial:
    """An operator with some arguments fixed, waiting for `expand`."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        self.site = _context.definition_site()
        if "task_id" not in kwargs:
            raise DagDefinitionError(
                f"{operator_class.__name__}.partial() needs task_id=",
                filename=self.site[0],
                lineno=self.site[1],
            )
        accepted = accepted_args(operator_class)
        reject_unknown(
            f"{operator_class.__name__}.partial({kwargs['task_id']!r})",
            set(kwargs) - accepted,
            accepted,
            self.site,
        )
        self.operator_class = operator_class
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> MappedOperator:
        """Create one task instance per element of each keyword argument's list."""
        return MappedOperator.build(self.operator_class, self.kwargs, mapped, self.site)


class MappedOperator(BaseOperator):
    """A task that expands into ``map_index``-ed instances at run time."""

    is_mapped = True

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: dict[str, Any],
        expand_into_op_kwargs: bool = False,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(**base_kwargs)
        self.operator_class = operator_class
        self.partial_kwargs = partial_kwargs
        self.base_kwargs = {k: v for k, v in base_kwargs.items() if k not in _PLACEMENT_ARGS}
        self.expand_input = expand_input
        self.expand_into_op_kwargs = expand_into_op_kwargs
        for arg in (*find_xcom_args(partial_kwargs), *find_xcom_args(expand_input)):
            self.set_upstream(arg)

    @classmethod
    def build(
        cls,
        operator_class: type[BaseOperator],
        partial: dict[str, Any],
        mapped: dict[str, Any],
        site: tuple[str | None, int | None],
        *,
        expand_into_op_kwargs: bool = False,
    ) -> MappedOperator:
        task_id = partial["task_id"]
        if not mapped:
            raise DagDefinitionError(
                f"expand() of task {task_id!r} needs at least one argument to map over",
                filename=site[0],
                lineno=site[1],
            )
        if not expand_into_op_kwargs:
            accepted = accepted_args(operator_class)
            reject_unknown(f"expand() of task {task_id!r}", set(mapped) - accepted, accepted, site)
        for name, value in mapped.items():
            _check_mappable(task_id, name, value, partial, site)
        merged = merge_default_args(operator_class, dict(partial))
        base = {k: v for k, v in merged.items() if k in BASE_DEFAULTS or k in _PLACEMENT_ARGS}
        specific = {k: v for k, v in merged.items() if k not in base}
        return cls(
            operator_class=operator_class,
            partial_kwargs=specific,
            expand_input=dict(mapped),
            expand_into_op_kwargs=expand_into_op_kwargs,
            **base,
        )

    # --- what the scheduler needs ---------------------------------------------------

    @property
    def operator_name(self) -> str:
        return self.operator_class.custom_operator_name or self.operator_class.__name__

    @property
    def task_type(self) -> str:
        return self.operator_class.__name__

    def expand_sources(self) -> dict[str, dict[str, Any]]:
        """Per mapped argument: its literal length, or the XCom it will come from."""
        sources: dict[str, dict[str, Any]] = {}
        for name, value in self.expand_input.items():
            if isinstance(value, XComArg):
                sources[name] = {"xcom": value.dump()}
            else:
                sources[name] = {"length": len(value)}
        return sources

    # --- what the task runner needs -------------------------------------------------

    def resolve_expand_input(self, context: dict[str, Any]) -> dict[str, list[Any]]:
        resolved: dict[str, list[Any]] = {}
        for name, source in self.expand_input.items():
            value = source.resolve(context) if isinstance(source, XComArg) else source
            resolved[name] = as_map_sequence(self.task_id, name, value)
        return resolved

    def unmap(self, context: dict[str, Any], map_index: int) -> BaseOperator:
        """The concrete operator of instance ``map_index``."""
        values = select_combination(self.resolve_expand_input(context), map_index)
        kwargs = {**self.base_kwargs, **self.partial_kwargs}
        if self.expand_into_op_kwargs:
            kwargs["op_kwargs"] = {**(kwargs.get("op_kwargs") or {}), **values}
        else:
            kwargs.update(values)
        with _context.UnmappingScope():
            operator = self.operator_class(
                task_id=self.task_id, dag=self.dag, task_group=self.task_group, **kwargs
            )
        operator.upstream_task_ids = set(self.upstream_task_ids)
        operator.downstream_task_ids = set(self.downstream_task_ids)
        operator.fileloc, operator.lineno = self.fileloc, self.lineno
        return operator

    def execute(self, context: dict[str, Any]) -> Any:
        raise RuntimeError(f"mapped task {self.task_id!r} runs through unmap(), not execute()")


def _check_mappable(
    task_id: str,
    name: str,
    value: Any,
    partial: Mapping[str, Any],
    site: tuple[str | None, int | None],
) -> None:
    if name in _PLACEMENT_ARGS:
        raise DagDefinitionError(
            f"task {task_id!r}: cannot map over {name!r}", filename=site[0], lineno=site[1]
        )
    if name in partial:
        raise DagDefinitionError(
            f"task {task_id!r}: {name!r} is given to both partial() and expand()",
            filename=site[0],
            lineno=site[1],
        )
    if not isinstance(value, XComArg | list | tuple | dict):
        raise DagDefinitionError(
            f"task {task_id!r}: expand({name}=...) needs a list, a dict or a task's output, "
            f"got {type(value).__name__}",
            filename=site[0],
            lineno=site[1],
        )


def as_map_sequence(task_id: str, name: str, value: Any) -> list[Any]:
    """The elements to map over: a list as is, a dict as (key, value) pairs."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(
        f"task {task_id!r} maps over {name!r}, which must be a list or a dict at run time, "
        f"but it is a {type(value).__name__}"
    )


def expanded_length(lengths: Mapping[str, int]) -> int:
    total = 1
    for n in lengths.values():
        total *= n
    return total


def select_combination(resolved: Mapping[str, list[Any]], map_index: int) -> dict[str, Any]:
    """Element ``map_index`` of the cross product, the last argument varying fastest."""
    total = expanded_length({k: len(v) for k, v in resolved.items()})
    if not 0 <= map_index < total:
        raise IndexError(f"map_index {map_index} is outside 0..{total - 1}")
    values: dict[str, Any] = {}
    remainder = map_index
    for name in reversed(list(resolved)):
        items = resolved[name]
        remainder, position = divmod(remainder, len(items))
        values[name] = items[position]
    return {name: values[name] for name in resolved}
