"""TaskFlow: ``@task`` turns a function into a task; calling it wires the DAG.

Example::

    @task(retries=2)
    def extract() -> list[int]:
        return [1, 2, 3]

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(extract())                               # extract >> total, value passed as XCom
    double = task(lambda x: x * 2, task_id="double")
    double.expand(x=extract())                     # one instance per element
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from tradewind.errors import DagDefinitionError
from tradewind.operators.bash import BashOperator
from tradewind.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from tradewind.sdk import _context
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.callables import call_with_context
from tradewind.sdk.mapped import MappedOperator
from tradewind.sdk.xcom_arg import XComArg


class _PythonDecoratedOperator(PythonOperator):
    custom_operator_name: ClassVar[str | None] = "@task"


class _BranchPythonDecoratedOperator(BranchPythonOperator):
    custom_operator_name: ClassVar[str | None] = "@task.branch"


class _ShortCircuitDecoratedOperator(ShortCircuitOperator):
    custom_operator_name: ClassVar[str | None] = "@task.short_circuit"


class _BashDecoratedOperator(BashOperator):
    """The function returns the command to run (rendered as a template)."""

    custom_operator_name: ClassVar[str | None] = "@task.bash"
    template_fields: ClassVar[typing.Sequence[str]] = (
        "bash_command",
        "env",
        "cwd",
        "op_args",
        "op_kwargs",
    )

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: typing.Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(bash_command=kwargs.pop("bash_command", "# set at run time"), **kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})

    def execute(self, context: dict[str, Any]) -> Any:
        command = call_with_context(self.python_callable, context, self.op_args, self.op_kwargs)
        if not isinstance(command, str) or not command.strip():
            raise TypeError(
                f"@task.bash function {self.task_id!r} must return a non-empty command string, "
                f"got {command!r}"
            )
        from tradewind.sdk.templating import render_value

        self.bash_command = render_value(self, command, context)
        return super().execute(context)


class TaskDecorator:
    """A function turned into a task factory; call it inside a DAG to add a task."""

    def __init__(
        self,
        function: Callable[..., Any],
        operator_class: type[BaseOperator],
        kwargs: dict[str, Any],
    ) -> None:
        if not callable(function):
            raise DagDefinitionError(f"@task needs a function, got {function!r}")
        self.function = function
        self.operator_class = operator_class
        self.kwargs = kwargs
        self.__wrapped__ = function
        self.__name__ = getattr(function, "__name__", "task")
        self.__doc__ = function.__doc__

    def _options(self) -> dict[str, Any]:
        options = dict(self.kwargs)
        if options.get("multiple_outputs") is None:
            options["multiple_outputs"] = _returns_mapping(self.function)
        if "doc_md" not in options and self.function.__doc__:
            options["doc_md"] = inspect.cleandoc(self.function.__doc__)
        task_id = options.pop("task_id", None) or self.__name__
        options["task_id"] = _unique_task_id(task_id, options.get("dag"))
        return options

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            inspect.signature(self.function).bind_partial(*args, **kwargs)
        except TypeError as exc:
            site = _context.definition_site()
            raise DagDefinitionError(
                f"task {self.__name__!r} called with bad arguments: {exc}",
                filename=site[0],
                lineno=site[1],
            ) from None

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        self._check_call(args, kwargs)
        operator = self.operator_class(
            python_callable=self.function, op_args=args, op_kwargs=kwargs, **self._options()
        )
        return XComArg(operator)

    def override(self, **kwargs: Any) -> TaskDecorator:
        """The same task with some options replaced: ``fit.override(task_id="fit_smb")(...)``."""
        return TaskDecorator(self.function, self.operator_class, {**self.kwargs, **kwargs})

    def partial(self, **kwargs: Any) -> _TaskPartial:
        self._check_call((), kwargs)
        return _TaskPartial(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        return _TaskPartial(self, {}).expand(**mapped)


class _TaskPartial:
    def __init__(self, decorator: TaskDecorator, fixed: dict[str, Any]) -> None:
        self.decorator = decorator
        self.fixed = fixed

    def expand(self, **mapped: Any) -> XComArg:
        both = sorted(set(self.fixed) & set(mapped))
        if both:
            site = _context.definition_site()
            raise DagDefinitionError(
                f"task {self.decorator.__name__!r}: {', '.join(both)} given to both partial() "
                "and expand()",
                filename=site[0],
                lineno=site[1],
            )
        self.decorator._check_call((), {**self.fixed, **mapped})
        options = self.decorator._options()
        options.update(python_callable=self.decorator.function, op_kwargs=self.fixed)
        mapped_op = MappedOperator.build(
            self.decorator.operator_class,
            options,
            mapped,
            _context.definition_site(),
            expand_into_op_kwargs=True,
        )
        return XComArg(mapped_op)


def _returns_mapping(function: Callable[..., Any]) -> bool:
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations must not break parsing
        return False
    returns = hints.get("return")
    origin = typing.get_origin(returns) or returns
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _unique_task_id(task_id: str, dag: Any) -> str:
    """TaskFlow reuses a function: later calls get ``name__1``, ``name__2``, ..."""
    dag = dag or _context.current_dag()
    group = _context.current_group()
    if dag is None:
        return task_id
    full = group.child_id(task_id) if group is not None and group.dag is dag else task_id
    if full not in dag.task_dict:
        return task_id
    n = 1
    while f"{full}__{n}" in dag.task_dict:
        n += 1
    return f"{task_id}__{n}"


def _factory(operator_class: type[BaseOperator]) -> Callable[..., Any]:
    def decorator(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if python_callable is not None:
            return TaskDecorator(python_callable, operator_class, kwargs)
        return lambda function: TaskDecorator(function, operator_class, kwargs)

    return decorator


class _TaskNamespace:
    """``task`` itself, plus ``task.python``, ``task.branch``, ``task.short_circuit``,
    ``task.bash``, ``task.sensor``."""

    python = staticmethod(_factory(_PythonDecoratedOperator))
    branch = staticmethod(_factory(_BranchPythonDecoratedOperator))
    short_circuit = staticmethod(_factory(_ShortCircuitDecoratedOperator))
    bash = staticmethod(_factory(_BashDecoratedOperator))

    @staticmethod
    def sensor(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """``@task.sensor(poke_interval=30, timeout=3600, mode="reschedule")``: the
        function is called at every poke."""
        from tradewind.sensors.python import DecoratedSensorOperator

        return _factory(DecoratedSensorOperator)(python_callable, **kwargs)

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return self.python(python_callable, **kwargs)


task = _TaskNamespace()
