"""Which context entries a user function receives, by the names of its parameters.

Plain functions are read from their code objects; everything else goes through
`inspect.signature`. Both must give what `inspect.signature` says for every shape of
parameter list, so each case is checked against a reading built from it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from tradewind.sdk.callables import _parameters, call_with_context, context_kwargs

CONTEXT = {"ti": "TI", "ds": "2026-12-01", "params": {"p": 1}, "run_id": "r", "a": "A"}


def by_signature(
    func: Callable[..., Any],
    context: Mapping[str, Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """The rule, read from `inspect.signature` alone."""
    params = list(inspect.signature(func).parameters.values())
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


def plain() -> None:
    pass


def named(ti: Any, ds: Any) -> None:
    pass


def positional_only(ti: Any, /, ds: Any) -> None:
    pass


def keyword_only(a: Any, *, ti: Any, params: Any = None) -> None:
    pass


def star_args(a: Any, *args: Any, ds: Any, **_: Any) -> None:
    pass


def star_only(*args: Any, ti: Any) -> None:
    pass


def everything(**context: Any) -> None:
    pass


def with_locals(ti: Any) -> tuple[int, int]:
    ds = run_id = 1  # locals are in co_varnames too, after the parameters
    return ds, run_id


@functools.wraps(named)
def wrapped(*args: Any, **kwargs: Any) -> None:
    named(*args, **kwargs)


class Instance:
    def __call__(self, ds: Any, run_id: Any = None) -> None:
        pass

    def method(self, ti: Any) -> None:
        pass


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "plain": plain,
    "named": named,
    "positional_only": positional_only,
    "keyword_only": keyword_only,
    "star_args": star_args,
    "star_only": star_only,
    "everything": everything,
    "with_locals": with_locals,
    "wrapped": wrapped,
    "partial": functools.partial(keyword_only, "x"),
    "lambda": lambda ti, ds=None: None,
    "instance": Instance(),
    "method": Instance().method,
}
CALLS = [((), {}), (("one",), {}), (("one", "two"), {}), ((), {"ds": "mine"}), (("x",), {"ti": 2})]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_context_a_function_receives_is_what_its_signature_asks_for(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    func = FUNCTIONS[name]
    assert context_kwargs(func, CONTEXT, args, kwargs) == by_signature(func, CONTEXT, args, kwargs)


def test_a_plain_function_is_read_from_its_code_and_a_wrapped_one_through_its_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[object] = []
    real = inspect.signature

    def signature(func: Callable[..., Any]) -> inspect.Signature:
        asked.append(func)
        return real(func)

    monkeypatch.setattr(inspect, "signature", signature)
    assert _parameters(keyword_only) == (False, ("a",), ("a", "ti", "params"))
    assert asked == []
    assert _parameters(wrapped) == (False, ("ti", "ds"), ("ti", "ds"))
    assert asked == [wrapped]


def test_a_function_is_called_with_what_it_was_given_and_the_context_it_names() -> None:
    def task(ti: Any, ds: Any, extra: Any) -> tuple[Any, Any, Any]:
        return ti, ds, extra

    assert call_with_context(task, CONTEXT, (), {"extra": "e"}) == ("TI", "2026-12-01", "e")
    assert call_with_context(task, CONTEXT, ("mine",), {"extra": "e"}) == (
        "mine",
        "2026-12-01",
        "e",
    )
