"""Operators that call a Python function: plain, branching and short-circuiting.

Example::

    def train(segment, ti):
        ti.xcom_push(key="rows", value=1000)
        return {"auc": 0.91}

    PythonOperator(task_id="train", python_callable=train, op_kwargs={"segment": "smb"})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from tradewind.errors import TradewindError
from tradewind.sdk.baseoperator import BaseOperator
from tradewind.sdk.callables import call_with_context, require_callable

logger = logging.getLogger(__name__)


class PythonOperator(BaseOperator):
    """Call ``python_callable(*op_args, **op_kwargs)``; its return value becomes an XCom.

    Context entries are passed by parameter name (``ti``, ``ds``, ``params``, ...), or all
    of them if the function takes ``**kwargs``.
    """

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")
    ui_color: ClassVar[str] = "#ffefeb"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_callable(self, python_callable)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        self.templates_exts = list(templates_exts or [])
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: dict[str, Any]) -> Any:
        if self.templates_dict is not None:
            context["templates_dict"] = self.templates_dict
        result = self.execute_callable(context)
        if self.show_return_value_in_logs:
            logger.info("Done. Returned value was: %.2000r", result)
        else:
            logger.info("Done. Returned value not shown")
        return result

    def execute_callable(self, context: dict[str, Any]) -> Any:
        return call_with_context(self.python_callable, context, self.op_args, self.op_kwargs)


class BranchMixin:
    """Follow some direct downstream tasks and skip the others."""

    def follow_branch(
        self: Any, context: dict[str, Any], branch: str | Iterable[str] | None
    ) -> None:
        dag = self.dag
        chosen = [branch] if isinstance(branch, str) else list(branch or [])
        followed: set[str] = set()
        invalid = []
        for task_or_group in chosen:
            if task_or_group in dag.task_dict:
                followed.add(task_or_group)
            elif (group := _find_group(dag.task_group, task_or_group)) is not None:
                followed.update(t.task_id for t in group.roots)
            else:
                invalid.append(task_or_group)
        if invalid:
            raise TradewindError(
                f"branch task {self.task_id!r} returned unknown task or group ids: "
                f"{', '.join(map(repr, invalid))}"
            )
        # Everything downstream of a followed task stays, e.g. a join below the branch.
        for task_id in list(followed):
            followed |= dag.get_flat_relative_ids(task_id)
        to_skip = sorted(self.downstream_task_ids - followed)
        logger.info("Following branch %s; skipping %s", sorted(followed) or "none", to_skip)
        context["ti"].skip(to_skip)


def _find_group(group: Any, group_id: str) -> Any:
    if group.group_id == group_id:
        return group
    from tradewind.sdk.taskgroup import TaskGroup

    for child in group.children.values():
        if isinstance(child, TaskGroup) and (found := _find_group(child, group_id)) is not None:
            return found
    return None


class BranchPythonOperator(BranchMixin, PythonOperator):
    """The callable returns the task id (or ids, or a group id) to follow; other direct
    downstream tasks are skipped. Returning None skips them all."""

    def execute(self, context: dict[str, Any]) -> Any:
        branch = super().execute(context)
        self.follow_branch(context, branch)
        return branch


class ShortCircuitOperator(PythonOperator):
    """Continue only if the callable returns a truthy value.

    When it is falsy, every task downstream is skipped (``ignore_downstream_trigger_rules``,
    the default), or only the direct downstream tasks, whose own trigger rules then decide
    what happens further down.
    """

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: dict[str, Any]) -> Any:
        condition = super().execute(context)
        if condition:
            logger.info("Condition is truthy; downstream tasks proceed")
            return condition
        if self.ignore_downstream_trigger_rules and self.dag is not None:
            to_skip = self.dag.get_flat_relative_ids(self.task_id)
        else:
            to_skip = set(self.downstream_task_ids)
        logger.info("Condition is falsy; skipping %s", sorted(to_skip))
        context["ti"].skip(sorted(to_skip))
        return condition
