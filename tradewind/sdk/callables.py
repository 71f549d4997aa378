"""Calling user functions with the parts of the task context they ask for by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from inspect import CO_VARKEYWORDS
from types import FunctionType
from typing import Any


def require_callable(task: Any, python_callable: Any, what: str = "task") -> None:
    """Refuse, at parse time and naming the place, a ``python_callable`` that is not one."""
    if not callable(python_callable):
        from tradewind.errors import DagDefinitionError

        raise DagDefinitionError(
            f"{what} {task.task_id!r}: python_callable must be callable, got {python_callable!r}",
            filename=task.fileloc,
            lineno=task.lineno,
        )


def call_with_context(
    func: Callable[..., Any],
    context: Mapping[str, Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Call ``func(*args, **kwargs)`` plus the context entries its parameters name.

    A function with ``**kwargs`` receives the whole context; otherwise only the
    context keys that match one of its parameter names (``ti``, ``ds``, ``params``...)
    and that the caller did not pass already.
    """
    return func(*args, **context_kwargs(func, context, args, kwargs or {}))


def context_kwargs(
    func: Callable[..., Any],
    context: Mapping[str, Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    takes_all, positional, by_name = _parameters(func)
    if takes_all:
        return {**{k: v for k, v in context.items() if k not in kwargs}, **kwargs}
    taken = positional[: len(args)]
    result = dict(kwargs)
    for name in by_name:
        if name in context and name not in kwargs and name not in taken:
            result[name] = context[name]
    return result


def _parameters(func: Callable[..., Any]) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """Whether ``func`` takes ``**kwargs``; the names of its parameters that can be given
    by position (in order); those that can be given by name (in order).

    A plain function's are read from its code object. `inspect.signature` gives the same
    answer, but builds a Signature and its Parameters for it: in a try's forked child
    that cost about fifty copied pages. Anything else (a method, a partial, a class, a
    wrapped or annotated-signature function) goes through `inspect.signature`."""
    if (
        type(func) is FunctionType
        and not hasattr(func, "__wrapped__")
        and not hasattr(func, "__signature__")
    ):
        code = func.__code__
        count, kw_only = code.co_argcount, code.co_kwonlyargcount
        names = code.co_varnames
        return (
            bool(code.co_flags & CO_VARKEYWORDS),
            names[:count],
            names[code.co_posonlyargcount : count] + names[count : count + kw_only],
        )
    params = list(inspect.signature(func).parameters.values())
    return (
        any(p.kind is p.VAR_KEYWORD for p in params),
        tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)),
        tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)),
    )
