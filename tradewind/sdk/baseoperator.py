"""`BaseOperator`: one unit of work in a DAG, with Airflow's arguments and defaults.

Write an operator by subclassing it and implementing ``execute(context)``::

    class CountRows(BaseOperator):
        template_fields = ("table",)

        def __init__(self, *, table: str, **kwargs):
            super().__init__(**kwargs)
            self.table = table

        def execute(self, context):
            return count_rows(self.table)   # the return value becomes an XCom
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from tradewind.errors import DagDefinitionError
from tradewind.sdk import _context
from tradewind.sdk._operator_args import (
    BASE_DEFAULTS,
    CALLBACK_ARGS,
    DEFAULT_POOL,
    DEFAULT_QUEUE,
    WEIGHT_RULES,
    accepted_args,
    apply_defaults,
    as_list,
    as_optional_timedelta,
    as_timedelta,
    callbacks,
)
from tradewind.sdk.dag import DAG, reject_unknown, validate_id
from tradewind.sdk.dependencies import DependencyMixin
from tradewind.sdk.params import ParamsDict
from tradewind.state import TriggerRule

if TYPE_CHECKING:
    from tradewind.sdk.mapped import OperatorPartial
    from tradewind.sdk.taskgroup import TaskGroup
    from tradewind.sdk.xcom_arg import XComArg


# The method a deferred try "resumes" in when its trigger timed out or failed.
FAIL_METHOD = "__fail__"


class BaseOperator(DependencyMixin):
    """Base of every operator; holds the options every task has (retries, pool, ...)."""

    template_fields: ClassVar[Sequence[str]] = ()
    template_ext: ClassVar[Sequence[str]] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    ui_color: ClassVar[str] = "#fff"
    ui_fgcolor: ClassVar[str] = "#000"
    custom_operator_name: ClassVar[str | None] = None
    # An EmptyOperator without callbacks is marked success without being executed.
    inherits_from_empty_operator: ClassVar[bool] = False
    is_mapped: ClassVar[bool] = False
    # Set when XComs of this task feed a mapped task, so the runner records their lengths.
    shallow_copy_attrs: ClassVar[Sequence[str]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "__tradewind_defaults__", False):
            cls.__init__ = apply_defaults(init)  # type: ignore[method-assign]

    def __init__(
        self,
        *,
        task_id: str,
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
        **kwargs: Any,
    ) -> None:
        site = _context.definition_site()
        self.fileloc, self.lineno = site
        unknown = set(kwargs) - set(BASE_DEFAULTS)
        reject_unknown(
            f"{type(self).__name__} {task_id!r}", unknown, accepted_args(type(self)), site
        )
        options = {**BASE_DEFAULTS, **kwargs}
        self._set_options(options, site, str(task_id))
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self._attach(task_id, dag, task_group, site)

    @property
    def log(self) -> logging.Logger:
        """The logger of the running try: what it logs goes to the try's log."""
        return logging.getLogger("tradewind.task")

    def _set_options(
        self, o: dict[str, Any], site: tuple[str | None, int | None], task_id: str
    ) -> None:
        where = f"task {task_id!r}"

        def fail(msg: str) -> DagDefinitionError:
            return DagDefinitionError(f"{where}: {msg}", filename=site[0], lineno=site[1])

        self._set_retry_options(o, fail)
        self._set_scheduling_options(o, fail)
        self._set_other_options(o, site, fail)

    def _set_retry_options(
        self, o: dict[str, Any], fail: Callable[[str], DagDefinitionError]
    ) -> None:
        self.owner: str = str(o["owner"])
        email = o["email"]
        self.email: list[str] = [email] if isinstance(email, str) else list(email or [])
        self.email_on_retry: bool = bool(o["email_on_retry"])
        self.email_on_failure: bool = bool(o["email_on_failure"])
        if not isinstance(o["retries"], int) or isinstance(o["retries"], bool) or o["retries"] < 0:
            raise fail(f"retries must be a non-negative integer, got {o['retries']!r}")
        self.retries: int = o["retries"]
        self.retry_delay: timedelta = as_timedelta(o["retry_delay"], "retry_delay", fail)
        backoff = o["retry_exponential_backoff"]
        self.retry_exponential_backoff: float = 2.0 if backoff is True else float(backoff or 0.0)
        self.max_retry_delay: timedelta | None = as_optional_timedelta(
            o["max_retry_delay"], "max_retry_delay", fail
        )
        self.execution_timeout: timedelta | None = as_optional_timedelta(
            o["execution_timeout"], "execution_timeout", fail
        )

    def _set_scheduling_options(
        self, o: dict[str, Any], fail: Callable[[str], DagDefinitionError]
    ) -> None:
        self.start_date: datetime | None = o["start_date"]
        self.end_date: datetime | None = o["end_date"]
        self.depends_on_past: bool = bool(o["depends_on_past"])
        self.ignore_first_depends_on_past: bool = bool(o["ignore_first_depends_on_past"])
        self.wait_for_past_depends_before_skipping: bool = bool(
            o["wait_for_past_depends_before_skipping"]
        )
        self.wait_for_downstream: bool = bool(o["wait_for_downstream"])
        if self.wait_for_downstream:
            self.depends_on_past = True
        if not isinstance(o["priority_weight"], int) or isinstance(o["priority_weight"], bool):
            raise fail(f"priority_weight must be an integer, got {o['priority_weight']!r}")
        self.priority_weight: int = o["priority_weight"]
        if str(o["weight_rule"]) not in WEIGHT_RULES:
            raise fail(f"weight_rule must be one of {', '.join(WEIGHT_RULES)}")
        self.weight_rule: str = str(o["weight_rule"])
        self.queue: str = str(o["queue"] or DEFAULT_QUEUE)
        self.pool: str = str(o["pool"] or DEFAULT_POOL)
        if not isinstance(o["pool_slots"], int) or o["pool_slots"] < 1:
            raise fail(f"pool_slots must be an integer >= 1, got {o['pool_slots']!r}")
        self.pool_slots: int = o["pool_slots"]
        self.on_execute_callback = callbacks(o["on_execute_callback"], "on_execute", fail)
        self.on_failure_callback = callbacks(o["on_failure_callback"], "on_failure", fail)
        self.on_success_callback = callbacks(o["on_success_callback"], "on_success", fail)
        self.on_retry_callback = callbacks(o["on_retry_callback"], "on_retry", fail)
        self.on_skipped_callback = callbacks(o["on_skipped_callback"], "on_skipped", fail)
        try:
            self.trigger_rule: TriggerRule = TriggerRule(o["trigger_rule"])
        except ValueError:
            allowed = ", ".join(r.value for r in TriggerRule)
            raise fail(
                f"unknown trigger_rule {o['trigger_rule']!r}; use one of {allowed}"
            ) from None
        for name in ("max_active_tis_per_dag", "max_active_tis_per_dagrun"):
            value = o[name]
            if value is not None and (not isinstance(value, int) or value < 1):
                raise fail(f"{name} must be a positive integer or None, got {value!r}")
        self.max_active_tis_per_dag: int | None = o["max_active_tis_per_dag"]
        self.max_active_tis_per_dagrun: int | None = o["max_active_tis_per_dagrun"]

    def _set_other_options(
        self,
        o: dict[str, Any],
        site: tuple[str | None, int | None],
        fail: Callable[[str], DagDefinitionError],
    ) -> None:
        self.params = ParamsDict(o["params"] or {}, site=site)
        self.executor: str | None = o["executor"]
        self.executor_config: dict[str, Any] = dict(o["executor_config"] or {})
        self.do_xcom_push: bool = bool(o["do_xcom_push"])
        self.multiple_outputs: bool = bool(o["multiple_outputs"])
        self.inlets: list[Any] = as_list(o["inlets"])
        self.outlets: list[Any] = as_list(o["outlets"])
        self.doc_md: str | None = o["doc_md"] or o["doc"]
        self.doc_json, self.doc_yaml, self.doc_rst = o["doc_json"], o["doc_yaml"], o["doc_rst"]
        self.run_as_user: str | None = o["run_as_user"]
        self.resources: Any = o["resources"]
        self.map_index_template: str | None = o["map_index_template"]
        self._display_name: str | None = o["task_display_name"]

    def _attach(
        self,
        task_id: str,
        dag: DAG | None,
        task_group: TaskGroup | None,
        site: tuple[str | None, int | None],
    ) -> None:
        validate_id("task_id", task_id, site=site)
        if _context.unmapping():
            self.task_id = task_id
            self.dag = dag
            self.task_group = task_group
            return
        dag = dag or _context.current_dag()
        if dag is None:
            raise DagDefinitionError(
                f"task {task_id!r} was created outside any DAG: create it inside "
                "`with DAG(...):`, in a @dag function, or pass dag=",
                filename=site[0],
                lineno=site[1],
            )
        group = task_group or _context.current_group()
        if group is None or group.dag is not dag:
            group = dag.task_group
        full_id = group.child_id(task_id)
        self.task_id = validate_id("task_id (with its group prefix)", full_id, site=site)
        self.dag = dag
        self.params = dag.params.merged(self.params)
        self.task_group = group
        if self.start_date is None:
            self.start_date = dag.start_date
        if self.end_date is None:
            self.end_date = dag.end_date
        dag.add_task(self)
        group.add(self)

    def _after_init(self) -> None:
        """Checks that need the subclass's attributes: template fields and XCom args."""
        for name in self.template_fields:
            if not hasattr(self, name):
                raise DagDefinitionError(
                    f"{type(self).__name__} lists template field {name!r} but has no such "
                    "attribute",
                    filename=self.fileloc,
                    lineno=self.lineno,
                )
        if not _context.unmapping():
            from tradewind.sdk.xcom_arg import find_xcom_args

            for field in self.template_fields:
                for arg in find_xcom_args(getattr(self, field)):
                    self.set_upstream(arg)

    # --- identity -------------------------------------------------------------------

    @property
    def dag_id(self) -> str:
        return self.dag.dag_id if self.dag is not None else f"adhoc_{self.owner}"

    @property
    def task_display_name(self) -> str:
        return self._display_name or self.task_id

    @property
    def label(self) -> str:
        """The task id without its group prefix."""
        group = self.task_group
        if group is not None and group.group_id and self.task_id.startswith(group.group_id + "."):
            return self.task_id[len(group.group_id) + 1 :]
        return self.task_id

    @property
    def operator_name(self) -> str:
        return self.custom_operator_name or type(self).__name__

    @property
    def task_type(self) -> str:
        return type(self).__name__

    @property
    def output(self) -> XComArg:
        """The return value of this task, usable as an argument of another task."""
        from tradewind.sdk.xcom_arg import XComArg

        return XComArg(self)

    @property
    def has_callbacks(self) -> bool:
        return any(getattr(self, f"{name}_callback") for name in CALLBACK_ARGS)

    # --- dependencies ---------------------------------------------------------------

    def upstream_edge_tasks(self) -> list[BaseOperator]:
        return [self]

    def downstream_edge_tasks(self) -> list[BaseOperator]:
        return [self]

    def add_downstream_task(self, other: BaseOperator) -> None:
        if other.dag is not self.dag:
            raise DagDefinitionError(
                f"cannot link task {self.task_id!r} of DAG {_dag_id(self)} to task "
                f"{other.task_id!r} of DAG {_dag_id(other)}: tasks must be in the same DAG",
                filename=_context.definition_site()[0],
                lineno=_context.definition_site()[1],
            )
        if other is self:
            raise DagDefinitionError(
                f"task {self.task_id!r} cannot depend on itself",
                filename=_context.definition_site()[0],
                lineno=_context.definition_site()[1],
            )
        self.downstream_task_ids.add(other.task_id)
        other.upstream_task_ids.add(self.task_id)

    @property
    def upstream_list(self) -> list[BaseOperator]:
        return [self.dag.task_dict[t] for t in sorted(self.upstream_task_ids)] if self.dag else []

    @property
    def downstream_list(self) -> list[BaseOperator]:
        return [self.dag.task_dict[t] for t in sorted(self.downstream_task_ids)] if self.dag else []

    # --- running --------------------------------------------------------------------

    def execute(self, context: dict[str, Any]) -> Any:
        """Do the work. The return value is pushed as the ``return_value`` XCom."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    def pre_execute(self, context: dict[str, Any]) -> None:
        """Called right before `execute`."""

    def post_execute(self, context: dict[str, Any], result: Any = None) -> None:
        """Called right after `execute` returned."""

    def on_kill(self) -> None:
        """Called when the try is stopped (timeout, kill); release external resources here."""

    def defer(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | float | None = None,
    ) -> NoReturn:
        """Suspend this try until ``trigger`` fires, freeing the worker slot; the task
        then resumes in ``self.<method_name>(context, event=<payload>, **kwargs)``. With
        ``timeout`` (a timedelta or seconds) the try fails if the trigger has not fired
        by then."""
        from tradewind.errors import TaskDefer

        if not callable(getattr(self, method_name, None)):
            raise TypeError(f"{type(self).__name__} has no method {method_name!r} to resume in")

        def fail(message: str) -> DagDefinitionError:
            return DagDefinitionError(f"task {self.task_id!r}: defer(): {message}")

        limit = as_optional_timedelta(timeout, "timeout", fail)
        raise TaskDefer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=limit)

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any], context: dict[str, Any]
    ) -> Any:
        """Continue a deferred try: call ``next_method``, or raise why it cannot resume
        (the trigger timed out or failed)."""
        from tradewind.errors import TaskDeferralError, TaskDeferralTimeout

        if next_method == FAIL_METHOD:
            if next_kwargs.get("timeout"):
                raise TaskDeferralTimeout(next_kwargs.get("error") or "the trigger timed out")
            error = next_kwargs.get("error") or "the trigger failed"
            trace = "".join(next_kwargs.get("traceback") or [])
            raise TaskDeferralError(f"{error}\n{trace}" if trace else error)
        return getattr(self, next_method)(context, **next_kwargs)

    def render_template_fields(
        self, context: Mapping[str, Any], renderer: Any = None
    ) -> dict[str, Any]:
        """Render every templated field in place (Jinja, StrictUndefined); returns them."""
        from tradewind.sdk.templating import render_fields

        return render_fields(self, context, renderer)

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """Fix arguments shared by every mapped instance; finish with `.expand(...)`."""
        from tradewind.sdk.mapped import OperatorPartial

        return OperatorPartial(cls, kwargs)

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {getattr(self, 'task_id', '?')}>"


# Operators without an __init__ of their own (EmptyOperator) still get default_args.
BaseOperator.__init__ = apply_defaults(BaseOperator.__init__)  # type: ignore[method-assign]


def _dag_id(task: BaseOperator) -> str:
    return repr(task.dag.dag_id) if task.dag else "<none>"
