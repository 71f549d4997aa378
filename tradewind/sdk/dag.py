"""`DAG`: a named set of tasks with dependencies, a schedule and run options.

Example::

    from datetime import datetime
    from tradewind import DAG
    from tradewind.operators.bash import BashOperator

    with DAG("nightly_features", schedule="0 2 * * *", start_date=datetime(2024, 1, 1)):
        BashOperator(task_id="build", bash_command="make features DATE={{ ds }}")
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tradewind.errors import DagDefinitionError
from tradewind.sdk import _context
from tradewind.sdk.params import ParamsDict

if TYPE_CHECKING:
    from tradewind.schedules import Schedule
    from tradewind.sdk.baseoperator import BaseOperator as Operator
    from tradewind.sdk.taskgroup import TaskGroup

_ID_PATTERN = re.compile(r"^[\w.-]+$")
MAX_ID_LENGTH = 250
MAX_TAG_LENGTH = 100

Callback = Callable[[dict[str, Any]], Any]
CallbackArg = Callback | Sequence[Callback] | None


def validate_id(kind: str, value: object, *, site: tuple[str | None, int | None]) -> str:
    """Ids are letters, digits, ``_``, ``.`` and ``-``, as in Airflow."""
    if not isinstance(value, str) or not value:
        raise DagDefinitionError(
            f"{kind} must be a non-empty string, got {value!r}", filename=site[0], lineno=site[1]
        )
    if len(value) > MAX_ID_LENGTH or not _ID_PATTERN.match(value):
        raise DagDefinitionError(
            f"{kind} {value!r} may only contain letters, digits, '_', '.' and '-' "
            f"(at most {MAX_ID_LENGTH} characters)",
            filename=site[0],
            lineno=site[1],
        )
    return value


def reject_unknown(
    kind: str, unknown: Iterable[str], known: Iterable[str], site: tuple[str | None, int | None]
) -> None:
    """Raise for unexpected keyword arguments, suggesting the closest known name."""
    unknown = sorted(unknown)
    if not unknown:
        return
    known = list(known)
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise DagDefinitionError(
        f"{kind} got unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(hints)}",
        filename=site[0],
        lineno=site[1],
    )


class DAG:
    """A workflow: tasks, their dependencies, and when and how runs of them happen.

    Arguments keep Airflow's names and defaults (Airflow 3: ``catchup=False``,
    ``schedule=None``). Use it as a context manager; tasks created inside belong to it.
    """

    _KNOWN_ARGS = (
        "dag_id",
        "description",
        "schedule",
        "start_date",
        "end_date",
        "default_args",
        "catchup",
        "max_active_runs",
        "max_active_tasks",
        "max_consecutive_failed_dag_runs",
        "dagrun_timeout",
        "tags",
        "params",
        "doc_md",
        "owner_links",
        "template_searchpath",
        "template_undefined",
        "user_defined_macros",
        "user_defined_filters",
        "render_template_as_native_obj",
        "is_paused_upon_creation",
        "on_success_callback",
        "on_failure_callback",
        "dag_display_name",
        "jinja_environment_kwargs",
        "fail_fast",
        "access_control",
        "auto_register",
    )

    def __init__(self, dag_id: str, **kwargs: Any) -> None:
        site = _context.definition_site()
        self.fileloc, self.lineno = site
        reject_unknown(
            f"DAG {dag_id!r}", set(kwargs) - set(self._KNOWN_ARGS), self._KNOWN_ARGS, site
        )
        self.dag_id = validate_id("dag_id", dag_id, site=site)
        get = kwargs.get
        self.description: str | None = get("description")
        self.default_args: dict[str, Any] = dict(get("default_args") or {})
        self.start_date: datetime | None = get("start_date") or self.default_args.get("start_date")
        self.end_date: datetime | None = get("end_date") or self.default_args.get("end_date")
        self.catchup: bool = bool(get("catchup", False))
        self.max_active_runs: int = int(get("max_active_runs", 16))
        self.max_active_tasks: int = int(get("max_active_tasks", 16))
        self.max_consecutive_failed_dag_runs: int = int(get("max_consecutive_failed_dag_runs", 0))
        self.dagrun_timeout: timedelta | None = get("dagrun_timeout")
        self.tags: list[str] = sorted(set(get("tags") or []))
        for tag in self.tags:
            if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
                raise DagDefinitionError(
                    f"DAG {dag_id!r}: tags must be strings of 1 to {MAX_TAG_LENGTH} characters, "
                    f"got {tag!r}",
                    filename=site[0],
                    lineno=site[1],
                )
        self.doc_md: str | None = get("doc_md")
        self.owner_links: dict[str, str] = dict(get("owner_links") or {})
        searchpath = get("template_searchpath")
        self.template_searchpath: list[str] = (
            [searchpath] if isinstance(searchpath, str) else list(searchpath or [])
        )
        self.user_defined_macros: dict[str, Any] = dict(get("user_defined_macros") or {})
        self.user_defined_filters: dict[str, Callable[..., Any]] = dict(
            get("user_defined_filters") or {}
        )
        self.render_template_as_native_obj: bool = bool(get("render_template_as_native_obj"))
        self.jinja_environment_kwargs: dict[str, Any] = dict(get("jinja_environment_kwargs") or {})
        self.is_paused_upon_creation: bool | None = get("is_paused_upon_creation")
        self.on_success_callback = _callback_list(get("on_success_callback"), "on_success", site)
        self.on_failure_callback = _callback_list(get("on_failure_callback"), "on_failure", site)
        self.dag_display_name: str = get("dag_display_name") or dag_id
        self.fail_fast: bool = bool(get("fail_fast", False))
        self.params = ParamsDict(get("params") or {}, site=site)
        self._validate_options(site)
        self.timezone = _timezone_of(self.start_date)
        self.start_date = _as_utc(self.start_date)
        self.end_date = _as_utc(self.end_date)
        self.schedule: Schedule = _make_schedule(get("schedule"), self.timezone, site)
        if self.schedule.type_name == "ContinuousTimetable":
            if "max_active_runs" not in kwargs:
                self.max_active_runs = 1
            elif self.max_active_runs > 1:
                raise DagDefinitionError(
                    f"DAG {dag_id!r} runs @continuous, so max_active_runs must be 1",
                    filename=site[0],
                    lineno=site[1],
                )
        self._check_start_date(site)

        self.task_dict: dict[str, Operator] = {}
        from tradewind.sdk.taskgroup import TaskGroup

        self.task_group: TaskGroup = TaskGroup.root(self)
        _context.DagCollector.register(self)

    # --- validation -----------------------------------------------------------------

    def _validate_options(self, site: tuple[str | None, int | None]) -> None:
        for name in ("max_active_runs", "max_active_tasks"):
            if getattr(self, name) < 1:
                raise DagDefinitionError(
                    f"DAG {self.dag_id!r}: {name} must be at least 1",
                    filename=site[0],
                    lineno=site[1],
                )
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, datetime):
                raise DagDefinitionError(
                    f"DAG {self.dag_id!r}: {name} must be a datetime, got {value!r}",
                    filename=site[0],
                    lineno=site[1],
                )
        if self.dagrun_timeout is not None and not isinstance(self.dagrun_timeout, timedelta):
            raise DagDefinitionError(
                f"DAG {self.dag_id!r}: dagrun_timeout must be a timedelta",
                filename=site[0],
                lineno=site[1],
            )

    def _check_start_date(self, site: tuple[str | None, int | None]) -> None:
        needs_start = self.schedule.periodic or self.schedule.type_name == "OnceTimetable"
        if needs_start and self.start_date is None:
            raise DagDefinitionError(
                f"DAG {self.dag_id!r} has schedule {self.schedule.summary!r} but no start_date; "
                "pass start_date= to the DAG or in default_args",
                filename=site[0],
                lineno=site[1],
            )

    def validate(self) -> None:
        """Checks that need the whole DAG: no cycles. Raises `DagDefinitionError`."""
        cycle = self._find_cycle()
        if cycle:
            path = " >> ".join([*cycle, cycle[0]])
            raise DagDefinitionError(
                f"DAG {self.dag_id!r} has a cycle: {path}",
                filename=self.fileloc,
                lineno=self.lineno,
            )

    def _find_cycle(self) -> list[str] | None:
        white, grey, black = 0, 1, 2
        color = dict.fromkeys(self.task_dict, white)
        for start in self.task_dict:
            if color[start] != white:
                continue
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(self._downstream_ids(start)))]
            color[start] = grey
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    color[node] = black
                    stack.pop()
                elif color[child] == grey:
                    path = [n for n, _ in stack]
                    return path[path.index(child) :]
                elif color[child] == white:
                    color[child] = grey
                    stack.append((child, iter(self._downstream_ids(child))))
        return None

    def _downstream_ids(self, task_id: str) -> list[str]:
        return sorted(self.task_dict[task_id].downstream_task_ids)

    # --- the task graph -------------------------------------------------------------

    def add_task(self, task: Operator) -> None:
        if task.task_id in self.task_dict and self.task_dict[task.task_id] is not task:
            raise DagDefinitionError(
                f"task id {task.task_id!r} has already been added to DAG {self.dag_id!r}",
                filename=task.fileloc,
                lineno=task.lineno,
            )
        self.task_dict[task.task_id] = task

    @property
    def tasks(self) -> list[Operator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> Operator:
        try:
            return self.task_dict[task_id]
        except KeyError:
            from tradewind.errors import TaskNotFound

            raise TaskNotFound(f"task {task_id!r} not found in DAG {self.dag_id!r}") from None

    @property
    def roots(self) -> list[Operator]:
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[Operator]:
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]

    def topological_sort(self) -> list[Operator]:
        """Tasks in dependency order; ties broken by definition order."""
        order = {tid: i for i, tid in enumerate(self.task_dict)}
        indegree = {tid: len(t.upstream_task_ids) for tid, t in self.task_dict.items()}
        ready = [tid for tid, n in indegree.items() if n == 0]
        result: list[Operator] = []
        while ready:
            ready.sort(key=order.__getitem__, reverse=True)
            tid = ready.pop()
            result.append(self.task_dict[tid])
            for child in self.task_dict[tid].downstream_task_ids:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if len(result) < len(self.task_dict):
            self.validate()  # raises, naming the cycle
        return result

    def get_flat_relative_ids(self, task_id: str, *, upstream: bool = False) -> set[str]:
        """All task ids downstream (or upstream) of a task, transitively."""
        found: set[str] = set()
        pending = [task_id]
        while pending:
            task = self.task_dict[pending.pop()]
            for rel in task.upstream_task_ids if upstream else task.downstream_task_ids:
                if rel not in found:
                    found.add(rel)
                    pending.append(rel)
        return found

    @property
    def owner(self) -> str:
        owners = sorted({t.owner for t in self.task_dict.values()})
        return ", ".join(owners) if owners else self.default_args.get("owner", "airflow")

    # --- context manager ------------------------------------------------------------

    def __enter__(self) -> DAG:
        _context.push_dag(self)
        _context.push_group(self.task_group)
        return self

    def __exit__(self, *exc: object) -> None:
        _context.pop_group()
        _context.pop_dag()

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"


def _callback_list(
    value: CallbackArg, name: str, site: tuple[str | None, int | None]
) -> list[Callback]:
    """A DAG's callbacks as a list (one callable or several may be given)."""
    items: list[Callback] = []
    if isinstance(value, list | tuple):
        items.extend(value)
    elif value is not None:
        items.append(value)  # type: ignore[arg-type]
    for item in items:
        if not callable(item):
            raise DagDefinitionError(
                f"{name}_callback must be callable or a list of callables, got {item!r}",
                filename=site[0],
                lineno=site[1],
            )
    return items


def _default_timezone() -> str:
    """TRADEWIND_DEFAULT_TIMEZONE (read directly: DAG files must not load the settings)."""
    import os

    return os.environ.get("TRADEWIND_DEFAULT_TIMEZONE") or "UTC"


def _timezone_of(start_date: datetime | None) -> str:
    from tradewind.schedules import timezone_name

    if start_date is not None and start_date.tzinfo is None:
        return _default_timezone()
    return timezone_name(start_date)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    from tradewind.schedules import to_utc

    return to_utc(value, default_tz=_default_timezone())


def _make_schedule(value: object, timezone: str, site: tuple[str | None, int | None]) -> Schedule:
    from tradewind.schedules import schedule_from_argument

    try:
        return schedule_from_argument(value, timezone=timezone)
    except DagDefinitionError as exc:
        exc.filename, exc.lineno = site
        raise


def dag(dag_id: str | Callable[..., Any] | None = None, **dag_kwargs: Any) -> Any:
    """Turn a function into a DAG factory: calling it builds the DAG, tasks inside.

    Example::

        @dag(schedule="@daily", start_date=datetime(2024, 1, 1))
        def etl():
            load(extract())

        etl()
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., DAG]:
        import functools

        @functools.wraps(func)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            from tradewind.sdk.params import function_params

            options = dict(dag_kwargs)
            defaults, references = function_params(func, args, kwargs)
            options["params"] = {**defaults, **(options.get("params") or {})}
            with DAG(dag_id if isinstance(dag_id, str) else func.__name__, **options) as new:
                if new.doc_md is None and func.__doc__:
                    new.doc_md = func.__doc__
                new.fileloc, new.lineno = _site_of(func)
                func(*args, **{**references, **kwargs})
            return new

        return factory

    if callable(dag_id):
        func, dag_id = dag_id, None
        return decorate(func)
    return decorate


def _site_of(func: Callable[..., Any]) -> tuple[str | None, int | None]:
    code = getattr(func, "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code else (None, None)
