"""Every error Tradewind raises on purpose.

One base class, families below it. Operators raise the control-flow
exceptions (`TaskSkip`, `TaskRetry`, ...) to end a try with a given outcome;
the task runner sorts them in one place.
"""

from __future__ import annotations

from typing import Any


class TradewindError(Exception):
    """Raised when Tradewind itself detects a problem; base of every Tradewind error."""


# --- configuration and infrastructure -------------------------------------------------


class ConfigError(TradewindError):
    """Raised when a setting has a value Tradewind cannot use; names the variable."""


class DatabaseError(TradewindError):
    """Raised when the metadata database cannot be reached or is not at the expected schema."""


# --- authoring ----------------------------------------------------------------------


class DagDefinitionError(TradewindError):
    """Raised when a DAG file defines something invalid: a cycle, a duplicate id, a bad argument.

    Carries the file and line of the offending definition when they are known, so the DAG
    file processor can point the user at it.
    """

    def __init__(self, message: str, *, filename: str | None = None, lineno: int | None = None):
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.lineno = lineno

    def __str__(self) -> str:
        if self.filename and self.lineno:
            return f"{self.message} ({self.filename}:{self.lineno})"
        return self.message


class ParamValidationError(TradewindError):
    """Raised when a run's conf does not satisfy the DAG's Params."""


class TemplateRenderError(TradewindError):
    """Raised when a templated field cannot be rendered (e.g. an undefined name)."""


class DagNotFound(TradewindError):
    """Raised when a DAG id is not known to the metadata database or the DAG folder."""


class DagRunNotFound(TradewindError):
    """Raised when a DAG run id is not known."""


class TaskNotFound(TradewindError):
    """Raised when a task id is not part of a DAG."""


class DagRunIdError(TradewindError):
    """Raised when a requested run id has characters or a length that are not allowed."""


class DagRunAlreadyExists(TradewindError):
    """Raised when a run with the same run id or logical date already exists."""


class BackfillError(TradewindError):
    """Raised when a backfill cannot be created or changed as asked."""


class BackfillNotFound(BackfillError):
    """Raised when a backfill id is not known."""


class BackfillAlreadyRunning(BackfillError):
    """Raised when a DAG already has a backfill that has not completed."""


class XComError(TradewindError):
    """Raised when an XCom value cannot be stored (not JSON-serialisable or too large)."""


class VariableNotFound(TradewindError, KeyError):
    """Raised when `Variable.get` finds no such key and no default was given."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "variable not found"


class ConnectionNotFound(TradewindError, KeyError):
    """Raised when a connection id is not defined in the DB or the environment."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "connection not found"


# --- task control flow ----------------------------------------------------------------


class TaskControlFlow(TradewindError):
    """Raised by operators to end a try with a specific outcome; base of the family."""


class TaskSkip(TaskControlFlow):
    """Raised inside a task to mark this try as skipped."""


class TaskFail(TaskControlFlow):
    """Raised inside a task to fail it now, with no retry even if retries are left."""


class SensorTimeout(TaskFail):
    """Raised by a sensor whose condition was not met within its ``timeout``: the task
    fails without a retry (a retry would wait again for the same thing)."""


class TaskRetry(TaskControlFlow):
    """Raised inside a task to request a retry (it fails if no retries are left)."""


class TaskReschedule(TaskControlFlow):
    """Raised by a sensor in reschedule mode to free its slot until `reschedule_at`."""

    def __init__(self, reschedule_at: object):
        super().__init__(f"rescheduled to {reschedule_at}")
        self.reschedule_at = reschedule_at


class TaskDefer(TaskControlFlow):
    """Raised (by `BaseOperator.defer`) to hand the task's wait to the triggerer: the try
    is suspended until ``trigger`` fires, then resumes in ``method_name`` with the event.
    ``timeout`` (a timedelta or None) bounds the wait."""

    def __init__(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: Any = None,
    ) -> None:
        super().__init__(f"deferred to {type(trigger).__name__}, resuming in {method_name}")
        self.trigger = trigger
        self.method_name = method_name
        self.kwargs = kwargs or {}
        self.timeout = timeout


class TaskDeferralError(TradewindError):
    """A deferred task cannot resume: its trigger failed."""


class TaskDeferralTimeout(TradewindError):
    """A deferred task's trigger did not fire within the deferral's ``timeout``."""


class TaskTimeout(BaseException):
    """Raised inside a task when its `execution_timeout` has passed.

    Derives from BaseException (as Airflow's does) so that a task's own
    ``except Exception`` cannot swallow it.
    """


class TaskTerminated(BaseException):
    """Raised inside a task when its process is asked to stop (SIGTERM, or its state was
    changed from outside); a BaseException for the same reason as `TaskTimeout`."""


# Airflow spells these differently; DAG files written for Airflow keep working.
AirflowSkipException = TaskSkip
AirflowFailException = TaskFail
AirflowSensorTimeout = SensorTimeout
AirflowException = TradewindError
AirflowTaskTimeout = TaskTimeout
TaskDeferred = TaskDefer
