"""Jinja rendering of an operator's ``template_fields`` right before it executes.

Undefined names fail the task with the field and the name (``StrictUndefined``); a
string ending in one of the operator's ``template_ext`` is a template file, looked up
next to the DAG file and on the DAG's ``template_searchpath``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradewind.errors import TemplateRenderError

if TYPE_CHECKING:
    import jinja2

    from tradewind.sdk.baseoperator import BaseOperator
    from tradewind.sdk.dag import DAG


def make_environment(dag: DAG | None) -> jinja2.Environment:
    import jinja2
    import jinja2.nativetypes
    import jinja2.sandbox

    searchpath = []
    if dag is not None:
        if dag.fileloc:
            searchpath.append(os.path.dirname(dag.fileloc))
        searchpath.extend(dag.template_searchpath)
    native = bool(dag and dag.render_template_as_native_obj)
    env_class: type[jinja2.Environment] = (
        jinja2.nativetypes.NativeEnvironment if native else jinja2.sandbox.SandboxedEnvironment
    )
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(searchpath),
        "undefined": jinja2.StrictUndefined,
        "extensions": ["jinja2.ext.do"],
        "keep_trailing_newline": True,
    }
    if dag is not None:
        options.update(dag.jinja_environment_kwargs)
    env = env_class(**options)
    env.filters.update(_FILTERS)
    if dag is not None:
        env.filters.update(dag.user_defined_filters)
        env.globals.update(dag.user_defined_macros)
    return env


def _ds(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _ds_nodash(value: datetime) -> str:
    return value.strftime("%Y%m%d")


def _ts(value: datetime) -> str:
    return value.isoformat()


def _ts_nodash(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _ts_nodash_with_tz(value: datetime) -> str:
    return value.isoformat().replace("-", "").replace(":", "")


_FILTERS = {
    "ds": _ds,
    "ds_nodash": _ds_nodash,
    "ts": _ts,
    "ts_nodash": _ts_nodash,
    "ts_nodash_with_tz": _ts_nodash_with_tz,
}


class _LazyEnvironment:
    """The Jinja environment, built only if some field really holds a template."""

    def __init__(self, task: BaseOperator, env: jinja2.Environment | None = None) -> None:
        self._task, self._env = task, env

    def get(self) -> jinja2.Environment:
        if self._env is None:
            self._env = make_environment(self._task.dag)
        return self._env


def render_fields(
    task: BaseOperator, context: Mapping[str, Any], env: jinja2.Environment | None = None
) -> dict[str, Any]:
    """Render the task's template fields in place; returns the rendered values."""
    lazy = _LazyEnvironment(task, env)
    rendered: dict[str, Any] = {}
    for field in task.template_fields:
        value = getattr(task, field)
        try:
            result = _render(task, value, context, lazy)
        except TemplateRenderError as exc:
            raise TemplateRenderError(
                f"task {task.task_id!r}: cannot render template field {field!r}: {exc}"
            ) from None
        setattr(task, field, result)
        rendered[field] = result
    return rendered


def render_value(task: BaseOperator, value: Any, context: Mapping[str, Any]) -> Any:
    """Render one value (a string, or strings nested in lists and dicts)."""
    try:
        return _render(task, value, context, _LazyEnvironment(task))
    except TemplateRenderError as exc:
        raise TemplateRenderError(f"task {task.task_id!r}: {exc}") from None


def _render(
    task: BaseOperator, value: Any, context: Mapping[str, Any], env: _LazyEnvironment
) -> Any:
    from tradewind.sdk.params import DagParam
    from tradewind.sdk.xcom_arg import XComArg

    if isinstance(value, XComArg | DagParam):
        return value.resolve(dict(context))
    if isinstance(value, str):
        return _render_string(task, value, context, env)
    if isinstance(value, list):
        return [_render(task, v, context, env) for v in value]
    if isinstance(value, tuple):
        return tuple(_render(task, v, context, env) for v in value)
    if isinstance(value, set):
        return {_render(task, v, context, env) for v in value}
    if isinstance(value, dict):
        return {k: _render(task, v, context, env) for k, v in value.items()}
    return value


def _render_string(
    task: BaseOperator, value: str, context: Mapping[str, Any], lazy: _LazyEnvironment
) -> Any:
    is_file = value.endswith(tuple(task.template_ext)) if task.template_ext else False
    if not is_file and "{{" not in value and "{%" not in value and "{#" not in value:
        return value
    import jinja2

    env = lazy.get()
    try:
        template = env.get_template(value) if is_file else env.from_string(value)
        return template.render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(f"{exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateRenderError(
            f"template file {exc.name!r} not found (searched {env.loader.searchpath})"  # type: ignore[union-attr]
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(
            f"template syntax error on line {exc.lineno}: {exc.message}"
        ) from None
