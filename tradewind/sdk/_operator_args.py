"""The arguments every operator accepts: Airflow's defaults, `default_args` merging,
and checks that turn mistakes into `DagDefinitionError` with the file and line."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tradewind.errors import DagDefinitionError
from tradewind.sdk import _context
from tradewind.sdk.dag import reject_unknown
from tradewind.state import TriggerRule

if TYPE_CHECKING:
    from tradewind.sdk.baseoperator import BaseOperator

DEFAULT_POOL = "default_pool"
DEFAULT_QUEUE = "default"
WEIGHT_RULES = ("downstream", "upstream", "absolute")

Callback = Callable[[dict[str, Any]], Any]

# Arguments BaseOperator accepts, with Airflow's defaults.
BASE_DEFAULTS: dict[str, Any] = {
    "owner": "airflow",
    "email": None,
    "email_on_retry": True,
    "email_on_failure": True,
    "retries": 0,
    "retry_delay": timedelta(seconds=300),
    "retry_exponential_backoff": False,
    "max_retry_delay": None,
    "start_date": None,
    "end_date": None,
    "depends_on_past": False,
    "ignore_first_depends_on_past": True,
    "wait_for_past_depends_before_skipping": False,
    "wait_for_downstream": False,
    "params": None,
    "priority_weight": 1,
    "weight_rule": "downstream",
    "queue": DEFAULT_QUEUE,
    "pool": None,
    "pool_slots": 1,
    "execution_timeout": None,
    "on_execute_callback": None,
    "on_failure_callback": None,
    "on_success_callback": None,
    "on_retry_callback": None,
    "on_skipped_callback": None,
    "trigger_rule": TriggerRule.ALL_SUCCESS,
    "max_active_tis_per_dag": None,
    "max_active_tis_per_dagrun": None,
    "executor": None,
    "executor_config": None,
    "do_xcom_push": True,
    "multiple_outputs": False,
    "inlets": None,
    "outlets": None,
    "doc": None,
    "doc_md": None,
    "doc_json": None,
    "doc_yaml": None,
    "doc_rst": None,
    "task_display_name": None,
    "run_as_user": None,
    "resources": None,
    "map_index_template": None,
}
CALLBACK_ARGS = ("on_execute", "on_failure", "on_success", "on_retry", "on_skipped")


def accepted_args(cls: type) -> frozenset[str]:
    """Every keyword any ``__init__`` in the class's MRO accepts (for default_args)."""
    cached = cls.__dict__.get("_accepted_args_cache")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    names: set[str] = set(BASE_DEFAULTS) | {"task_id", "dag", "task_group", "default_args"}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL) and param.name != "self":
                names.add(param.name)
    result = frozenset(names)
    cls._accepted_args_cache = result  # type: ignore[attr-defined]
    return result


def merge_default_args(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    dag = kwargs.get("dag") or _context.current_dag()
    group = kwargs.get("task_group") or _context.current_group()
    defaults: dict[str, Any] = {}
    if dag is not None:
        defaults.update(dag.default_args)
    if group is not None:
        defaults.update(group.inherited_default_args())
    defaults.update(kwargs.pop("default_args", None) or {})
    accepted = accepted_args(cls)
    merged = dict(kwargs)
    for name, value in defaults.items():
        if name in accepted and name not in merged:
            merged[name] = value
    if "params" in defaults and "params" in kwargs:
        merged["params"] = {**defaults["params"], **(kwargs["params"] or {})}
    return merged


def check_arguments(cls: type, kwargs: dict[str, Any]) -> None:
    accepted = accepted_args(cls)
    unknown = set(kwargs) - accepted
    if unknown:
        task_id = kwargs.get("task_id")
        name = f"{cls.__name__} {task_id!r}" if task_id else cls.__name__
        reject_unknown(name, unknown, accepted, _context.definition_site())


def apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if args:
            raise DagDefinitionError(
                f"{type(self).__name__} takes keyword arguments only (task_id=..., ...)",
                filename=_context.definition_site()[0],
                lineno=_context.definition_site()[1],
            )
        depth = self.__dict__.get("_init_depth", 0)
        if depth == 0:
            check_arguments(type(self), kwargs)
            if not _context.unmapping():
                kwargs = merge_default_args(type(self), kwargs)
        self.__dict__["_init_depth"] = depth + 1
        try:
            init(self, **kwargs)
        except TypeError as exc:
            if depth > 0 or "required" not in str(exc):
                raise
            site = _context.definition_site()
            raise DagDefinitionError(
                f"{type(self).__name__} {kwargs.get('task_id', '')!r}: {exc}".replace(" ''", ""),
                filename=site[0],
                lineno=site[1],
            ) from None
        finally:
            self.__dict__["_init_depth"] = depth
        if depth == 0:
            self._after_init()

    wrapper.__tradewind_defaults__ = True  # type: ignore[attr-defined]
    return wrapper


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return list(value)
    return [value]


def as_timedelta(value: Any, name: str, fail: Callable[[str], DagDefinitionError]) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    raise fail(f"{name} must be a timedelta or a number of seconds, got {value!r}")


def as_optional_timedelta(
    value: Any, name: str, fail: Callable[[str], DagDefinitionError]
) -> timedelta | None:
    return None if value is None else as_timedelta(value, name, fail)


def callbacks(value: Any, name: str, fail: Callable[[str], DagDefinitionError]) -> list[Callback]:
    items: Iterable[Any] = as_list(value)
    result = []
    for item in items:
        if not callable(item):
            raise fail(f"{name}_callback must be callable or a list of callables, got {item!r}")
        result.append(item)
    return result


def as_states(
    given: Iterable[str] | None,
    default: list[str],
    known: Iterable[str],
    what: str,
    fail: Callable[[str], DagDefinitionError],
) -> list[str]:
    """A list of state names, each one of ``known`` (the states of ``what``)."""
    states = [str(s) for s in given] if given is not None else default
    allowed = sorted(str(k) for k in known)
    unknown = sorted(set(states) - set(allowed))
    if unknown:
        raise fail(
            f"{', '.join(map(repr, unknown))} is not a state of {what} (use {', '.join(allowed)})"
        )
    return states
