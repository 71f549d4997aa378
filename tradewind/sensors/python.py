"""`PythonSensor` and ``@task.sensor``: the poke is a Python function.

Example::

    @task.sensor(poke_interval=30, timeout=3600, mode="reschedule")
    def partition_ready(ds=None) -> PokeReturnValue:
        rows = count_rows("events", ds)
        return PokeReturnValue(is_done=rows > 0, xcom_value=rows)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from tradewind.sdk.callables import call_with_context, require_callable
from tradewind.sensors import BaseSensorOperator, PokeReturnValue


class PythonSensor(BaseSensorOperator):
    """Done when ``python_callable(*op_args, **op_kwargs)`` returns something true (or a
    `PokeReturnValue` that is done, whose ``xcom_value`` becomes the task's XCom).
    Context entries are passed by parameter name, as to `PythonOperator`."""

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_callable(self, python_callable, "sensor")
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        if self.templates_dict is not None:
            context["templates_dict"] = self.templates_dict
        result = call_with_context(self.python_callable, context, self.op_args, self.op_kwargs)
        return result if isinstance(result, PokeReturnValue) else bool(result)


class DecoratedSensorOperator(PythonSensor):
    """What ``@task.sensor`` builds."""

    custom_operator_name: ClassVar[str | None] = "@task.sensor"
