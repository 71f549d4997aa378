"""`EmptyOperator`: does nothing; useful as a join or a placeholder.

Unless it has callbacks, the scheduler marks it success without sending it to a worker.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tradewind.sdk.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """A task that succeeds without doing anything."""

    ui_color: ClassVar[str] = "#e8f7e4"
    inherits_from_empty_operator: ClassVar[bool] = True

    def execute(self, context: dict[str, Any]) -> None:
        return None
