"""States of task instances and DAG runs, and the pure rules that move between them.

Every status write in Tradewind goes through this module: the scheduler, the task
runner and the API ask `check_transition` before they write, and they decide with
`evaluate_trigger_rule`, `decide_run_state` and `resolve_try_end`. None of it touches
a database or reads the clock; `now` is always an argument.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


class TaskInstanceState(enum.StrEnum):
    """The state of one task instance. "No status yet" is `None`, never a member."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    REMOVED = "removed"


class DagRunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class DagRunType(enum.StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    BACKFILL = "backfill"
    ASSET_TRIGGERED = "asset_triggered"

    def run_id_for(self, when: datetime) -> str:
        """Airflow's run id shape: ``scheduled__2024-01-01T00:00:00+00:00``."""
        return f"{self.value}__{when.isoformat()}"


class TriggerRule(enum.StrEnum):
    """When a task may run, given the states of its direct upstream tasks."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"


TI = TaskInstanceState

FINISHED_STATES = frozenset({TI.SUCCESS, TI.FAILED, TI.SKIPPED, TI.UPSTREAM_FAILED, TI.REMOVED})
FAILED_STATES = frozenset({TI.FAILED, TI.UPSTREAM_FAILED})
SUCCESS_STATES = frozenset({TI.SUCCESS, TI.SKIPPED})
# States in which a try occupies (or is about to occupy) an executor slot.
ACTIVE_STATES = frozenset({TI.QUEUED, TI.RUNNING})
# States from which the scheduler may queue the instance again once it is due.
WAITING_TO_RETRY_STATES = frozenset({TI.UP_FOR_RETRY, TI.UP_FOR_RESCHEDULE})
TERMINAL_RUN_STATES = frozenset({DagRunState.SUCCESS, DagRunState.FAILED})


# --- transitions -------------------------------------------------------------------

_S = TaskInstanceState | None

# Transitions the system makes on its own. Users may additionally mark any instance
# success/failed/skipped and clear any finished one back to None (see `check_transition`).
# None/scheduled -> success: an EmptyOperator finishes without being executed.
_AUTOMATIC: dict[_S, frozenset[_S]] = {
    None: frozenset(
        {TI.SCHEDULED, TI.QUEUED, TI.SKIPPED, TI.UPSTREAM_FAILED, TI.REMOVED, TI.SUCCESS}
    ),
    TI.SCHEDULED: frozenset(
        {TI.QUEUED, TI.SKIPPED, TI.UPSTREAM_FAILED, TI.REMOVED, TI.SUCCESS, None}
    ),
    # queued -> up_for_retry/failed: a try that never started (stuck in queued, worker lost).
    TI.QUEUED: frozenset({TI.RUNNING, TI.SCHEDULED, TI.UP_FOR_RETRY, TI.FAILED, TI.REMOVED}),
    TI.RUNNING: frozenset(
        {
            TI.SUCCESS,
            TI.FAILED,
            TI.UP_FOR_RETRY,
            TI.UP_FOR_RESCHEDULE,
            TI.DEFERRED,
            TI.SKIPPED,
        }
    ),
    TI.UP_FOR_RETRY: frozenset({TI.SCHEDULED, TI.QUEUED, TI.UPSTREAM_FAILED, TI.SKIPPED}),
    TI.UP_FOR_RESCHEDULE: frozenset({TI.SCHEDULED, TI.QUEUED, TI.UPSTREAM_FAILED, TI.SKIPPED}),
    TI.DEFERRED: frozenset({TI.SCHEDULED, TI.QUEUED, TI.FAILED, TI.UP_FOR_RETRY}),
    TI.SUCCESS: frozenset(),
    TI.FAILED: frozenset(),
    TI.SKIPPED: frozenset(),
    TI.UPSTREAM_FAILED: frozenset(),
    TI.REMOVED: frozenset({None}),
}

USER_MARKABLE_STATES = frozenset({TI.SUCCESS, TI.FAILED, TI.SKIPPED})


class IllegalTransitionError(ValueError):
    """Raised when code tries a state change the rules do not allow."""


def check_transition(old: _S, new: _S, *, by_user: bool = False) -> None:
    """Raise `IllegalTransitionError` unless ``old -> new`` is allowed.

    Users (API, UI, CLI) may also mark any instance success, failed or skipped, and clear
    any instance that is not running back to no status.
    """
    if new in _AUTOMATIC[old]:
        return
    if by_user and (new in USER_MARKABLE_STATES or (new is None and old != TI.RUNNING)):
        return
    raise IllegalTransitionError(f"a task instance cannot go from {old} to {new}")


# --- trigger rules -------------------------------------------------------------------


class Readiness(enum.Enum):
    """What the trigger rule says about a task whose upstream tasks are in some states."""

    WAIT = "wait"
    RUN = "run"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass(frozen=True, slots=True)
class UpstreamSummary:
    """Counts of the direct upstream task instances by state (mapped ones counted each)."""

    total: int
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0

    @classmethod
    def of(cls, states: Iterable[_S]) -> UpstreamSummary:
        counts = dict.fromkeys(("success", "skipped", "failed", "upstream_failed", "removed"), 0)
        total = 0
        for state in states:
            total += 1
            if state is not None and state.value in counts:
                counts[state.value] += 1
        return cls(total=total, **counts)

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed + self.removed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total

    @property
    def any_failed(self) -> int:
        return self.failed + self.upstream_failed


def evaluate_trigger_rule(rule: TriggerRule, up: UpstreamSummary) -> Readiness:
    """Decide a not-yet-started task from its direct upstream tasks, as Airflow does.

    A task with no upstream tasks is always ready. Rules that can decide before every
    upstream task is done (``one_*``) do so; the others wait.
    """
    if up.total == 0 or rule is TriggerRule.ALWAYS:
        return Readiness.RUN
    return _RULES[rule](up)


def _all_success(up: UpstreamSummary) -> Readiness:
    if up.any_failed:
        return Readiness.UPSTREAM_FAILED
    if up.skipped:
        return Readiness.SKIP
    return Readiness.RUN if up.success + up.removed >= up.total else Readiness.WAIT


def _all_failed(up: UpstreamSummary) -> Readiness:
    if up.success or up.skipped:
        return Readiness.SKIP
    return Readiness.RUN if up.all_done else Readiness.WAIT


def _all_done(up: UpstreamSummary) -> Readiness:
    return Readiness.RUN if up.all_done else Readiness.WAIT


def _all_skipped(up: UpstreamSummary) -> Readiness:
    if up.success or up.any_failed:
        return Readiness.SKIP
    return Readiness.RUN if up.all_done else Readiness.WAIT


def _one_success(up: UpstreamSummary) -> Readiness:
    if up.success:
        return Readiness.RUN
    if not up.all_done:
        return Readiness.WAIT
    return Readiness.SKIP if up.skipped + up.removed == up.total else Readiness.UPSTREAM_FAILED


def _one_failed(up: UpstreamSummary) -> Readiness:
    if up.any_failed:
        return Readiness.RUN
    return Readiness.SKIP if up.all_done else Readiness.WAIT


def _one_done(up: UpstreamSummary) -> Readiness:
    if up.success or up.failed:
        return Readiness.RUN
    return Readiness.SKIP if up.all_done else Readiness.WAIT


def _none_failed(up: UpstreamSummary) -> Readiness:
    if up.any_failed:
        return Readiness.UPSTREAM_FAILED
    return Readiness.RUN if up.all_done else Readiness.WAIT


def _none_failed_min_one_success(up: UpstreamSummary) -> Readiness:
    if up.any_failed:
        return Readiness.UPSTREAM_FAILED
    if not up.all_done:
        return Readiness.WAIT
    return Readiness.RUN if up.success else Readiness.SKIP


def _none_skipped(up: UpstreamSummary) -> Readiness:
    if up.skipped:
        return Readiness.SKIP
    return Readiness.RUN if up.all_done else Readiness.WAIT


_RULES = {
    TriggerRule.ALL_SUCCESS: _all_success,
    TriggerRule.ALL_FAILED: _all_failed,
    TriggerRule.ALL_DONE: _all_done,
    TriggerRule.ALL_SKIPPED: _all_skipped,
    TriggerRule.ONE_SUCCESS: _one_success,
    TriggerRule.ONE_FAILED: _one_failed,
    TriggerRule.ONE_DONE: _one_done,
    TriggerRule.NONE_FAILED: _none_failed,
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: _none_failed_min_one_success,
    TriggerRule.NONE_SKIPPED: _none_skipped,
}


# --- DAG runs ------------------------------------------------------------------------


def decide_run_state(
    states: Mapping[str, Iterable[_S]], leaves: Iterable[str]
) -> DagRunState | None:
    """The final state of a run, or None while any instance is unfinished.

    ``states`` maps each task id to the states of its instances (several when mapped);
    ``leaves`` are the task ids with no downstream task. As in Airflow, a finished run
    failed if a leaf instance failed or was upstream_failed, and succeeded otherwise (a
    failure upstream of an ``all_done`` leaf does not fail the run).
    """
    all_states = [s for ss in states.values() for s in ss]
    if any(s not in FINISHED_STATES for s in all_states):
        return None
    leaf_states = (s for leaf in leaves for s in states.get(leaf, ()))
    if any(s in FAILED_STATES for s in leaf_states):
        return DagRunState.FAILED
    return DagRunState.SUCCESS


# --- ends of a try ------------------------------------------------------------------


class TryEnd(enum.Enum):
    """How one try of a task ended, as the task runner observed it."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"  # an exception; retried if retries are left
    FAILED_NO_RETRY = "failed_no_retry"  # TaskFail: fail now whatever retries are left
    RETRY_REQUESTED = "retry_requested"
    TIMED_OUT = "timed_out"  # execution_timeout; retried like a failure
    RESCHEDULED = "rescheduled"
    DEFERRED = "deferred"
    LOST = "lost"  # the process died or stopped heartbeating (zombie)
    # Stopped by its worker or executor shutting down: handed back for another try now,
    # whatever retries are left (the task did not fail; its host went away).
    INTERRUPTED = "interrupted"


# The ends whose meaning depends on the task's retry policy (see `resolve_try_end`);
# every other end means the same whatever the policy, so a caller may skip looking it up.
RETRYABLE_ENDS = frozenset({TryEnd.FAILED, TryEnd.RETRY_REQUESTED, TryEnd.TIMED_OUT, TryEnd.LOST})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 0
    retry_delay: timedelta = timedelta(seconds=300)
    retry_exponential_backoff: float = 0.0  # 0 = off; True in a DAG file means 2.0
    max_retry_delay: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """What a try's end means: the new state and, for retries, when the next try is due."""

    state: TaskInstanceState
    next_try_at: datetime | None = None
    callback: str | None = None  # "on_success" | "on_failure" | "on_retry" | "on_skipped"


def retry_delay_for(policy: RetryPolicy, try_number: int, jitter_key: str) -> timedelta:
    """How long to wait before the next try after try ``try_number`` failed.

    With exponential backoff the wait is ``retry_delay * base**(try_number - 1)`` stretched
    by a deterministic jitter of up to 100% (derived from ``jitter_key``, so a replay gives
    the same answer), then capped by ``max_retry_delay``.
    """
    delay = policy.retry_delay
    if policy.retry_exponential_backoff > 0:
        base = policy.retry_exponential_backoff
        floor = max(1, math.ceil(delay.total_seconds() * base ** max(try_number - 1, 0)))
        digest = hashlib.sha1(f"{jitter_key}#{try_number}".encode(), usedforsecurity=False)
        jittered = floor + int(digest.hexdigest(), 16) % floor
        delay = timedelta(seconds=min(jittered, timedelta.max.total_seconds() - 1))
    if policy.max_retry_delay is not None:
        delay = min(delay, policy.max_retry_delay)
    return delay


def resolve_try_end(
    end: TryEnd,
    *,
    try_number: int,
    policy: RetryPolicy,
    now: datetime,
    jitter_key: str,
    reschedule_at: datetime | None = None,
    max_tries: int | None = None,
) -> Transition:
    """The one place that decides what each end of a try means for its task instance.

    A failed try is retried while the task has retries and ``try_number`` is at most
    ``max_tries`` (the instance's own budget: ``retries`` at first, raised when the
    instance is cleared so that it gets its retries again); without ``max_tries``,
    ``policy.retries`` is the budget.
    """
    if end is TryEnd.SUCCESS:
        return Transition(TI.SUCCESS, callback="on_success")
    if end is TryEnd.SKIPPED:
        return Transition(TI.SKIPPED, callback="on_skipped")
    if end is TryEnd.RESCHEDULED:
        return Transition(TI.UP_FOR_RESCHEDULE, next_try_at=reschedule_at or now)
    if end is TryEnd.DEFERRED:
        return Transition(TI.DEFERRED)
    if end is TryEnd.INTERRUPTED:
        return Transition(TI.UP_FOR_RETRY, next_try_at=now)
    if end not in RETRYABLE_ENDS:  # FAILED_NO_RETRY
        return Transition(TI.FAILED, callback="on_failure")
    budget = policy.retries if max_tries is None else max_tries
    retries_left = policy.retries > 0 and try_number <= budget
    if not retries_left:
        return Transition(TI.FAILED, callback="on_failure")
    delay = retry_delay_for(policy, try_number, jitter_key)
    return Transition(TI.UP_FOR_RETRY, next_try_at=now + delay, callback="on_retry")
