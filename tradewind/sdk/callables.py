"""Calling user functions with the parts of the task context they ask for by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
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
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return {**{k: v for k, v in context.items() if k not in kwargs}, **kwargs}
    positional = {
        p.name
        for p in params[: len(args)]
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    result = dict(kwargs)
    for p in params:
        wanted = p.name in context and p.name not in kwargs and p.name not in positional
        if wanted and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            result[p.name] = context[p.name]
    return result
