"""Planning one DAG run: which instances to expand, skip, fail upstream or queue.

`plan_run` is pure: it takes the run's serialized DAG, a snapshot of its task instances
and ``now``, and returns a `RunPlan`. The scheduler (and `dags test`) loads the rows,
calls it, and applies the plan in one transaction. Decisions flow in dependency order
within one call, so a skip or an upstream failure propagates all the way down at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tradewind.serialization import SerializedDag, TaskSpec
from tradewind.state import (
    FINISHED_STATES,
    SUCCESS_STATES,
    WAITING_TO_RETRY_STATES,
    DagRunState,
    Readiness,
    TaskInstanceState,
    UpstreamSummary,
    decide_run_state,
    evaluate_trigger_rule,
)

TI = TaskInstanceState
Key = tuple[str, int]  # (task_id, map_index)


@dataclass(frozen=True, slots=True)
class TISnapshot:
    task_id: str
    map_index: int
    state: TaskInstanceState | None
    try_number: int = 0
    next_try_at: datetime | None = None


@dataclass
class RunPlan:
    """What to change in one run. Apply ``expand`` first, then ``set_state``; ``ready``
    instances may now be scheduled (their dependencies are met)."""

    expand: dict[str, int] = field(default_factory=dict)  # task_id -> instance count (>= 1)
    set_state: dict[Key, TaskInstanceState] = field(default_factory=dict)
    ready: list[Key] = field(default_factory=list)  # to queue, highest priority first
    run_state: DagRunState | None = None

    @property
    def changed(self) -> bool:
        return bool(self.expand or self.set_state or self.ready or self.run_state)


def plan_run(
    dag: SerializedDag,
    tis: Iterable[TISnapshot],
    *,
    now: datetime,
    map_lengths: Mapping[tuple[str, str], int] | None = None,
    past_states: Mapping[Key, TaskInstanceState | None] | None = None,
) -> RunPlan:
    """Decide what happens next in a run.

    ``map_lengths`` gives, per (task_id, xcom key), the total length of the XCom a mapped
    task expands over. ``past_states`` holds the previous run's instance states for
    ``depends_on_past``; None when there is no previous run.
    """
    plan = RunPlan()
    states: dict[str, dict[int, TaskInstanceState | None]] = {}
    snapshots: dict[Key, TISnapshot] = {}
    for ti in tis:
        states.setdefault(ti.task_id, {})[ti.map_index] = ti.state
        snapshots[(ti.task_id, ti.map_index)] = ti
    for task_id, instances in states.items():
        if task_id not in dag.tasks:
            for map_index, state in instances.items():
                if state not in FINISHED_STATES:
                    _decide(plan, states, (task_id, map_index), TI.REMOVED)
    for spec in dag.tasks.values():
        _plan_task(plan, dag, spec, states, snapshots, now, map_lengths or {}, past_states)
    if dag.raw.get("fail_fast"):
        _fail_fast(plan, states)
    plan.ready.sort(key=lambda key: (-dag.tasks[key[0]].weight, key))
    if not plan.ready:
        live = {t: list(m.values()) for t, m in states.items() if t in dag.tasks}
        plan.run_state = decide_run_state(live, dag.leaves)
    return plan


# States that only move on their own (a slot frees, a try ends, a trigger fires).
_IN_FLIGHT = frozenset({TI.SCHEDULED, TI.QUEUED, TI.RUNNING, TI.DEFERRED})


def is_settled(state_counts: Mapping[TaskInstanceState | None, int]) -> bool:
    """Would planning the run change nothing? True when every instance is either in
    flight (scheduled, queued, running, deferred) or succeeded/skipped, and at least one
    is in flight: no instance waits for a decision (no state yet, a retry or reschedule
    due, or a failure that trigger rules or ``fail_fast`` react to), and the run is not
    ready to be decided. A wide run whose tasks all wait for slots is settled, so the
    scheduler need not re-plan it each time one of its tries ends."""
    present = {state for state, count in state_counts.items() if count}
    return bool(present & _IN_FLIGHT) and present <= _IN_FLIGHT | SUCCESS_STATES


def _fail_fast(plan: RunPlan, states: dict[str, dict[int, TaskInstanceState | None]]) -> None:
    """``fail_fast``: once a task failed, nothing that has not started yet will."""
    if not any(TI.FAILED in m.values() for m in states.values()):
        return
    plan.ready.clear()
    for task_id, instances in states.items():
        for map_index, state in instances.items():
            if state in (None, TI.SCHEDULED, TI.UP_FOR_RETRY, TI.UP_FOR_RESCHEDULE):
                _decide(plan, states, (task_id, map_index), TI.SKIPPED)


def _decide(
    plan: RunPlan,
    states: dict[str, dict[int, TaskInstanceState | None]],
    key: Key,
    state: TaskInstanceState,
) -> None:
    plan.set_state[key] = state
    states[key[0]][key[1]] = state


def _plan_task(
    plan: RunPlan,
    dag: SerializedDag,
    spec: TaskSpec,
    states: dict[str, dict[int, TaskInstanceState | None]],
    snapshots: Mapping[Key, TISnapshot],
    now: datetime,
    map_lengths: Mapping[tuple[str, str], int],
    past_states: Mapping[Key, TaskInstanceState | None] | None,
) -> None:
    instances = states.get(spec.task_id)
    if not instances:
        return
    upstream = UpstreamSummary.of(s for up in spec.upstream for s in states.get(up, {}).values())
    # Scheduled instances already passed their trigger rule; they wait for a slot.
    pending = [m for m, s in instances.items() if s is None]
    for map_index, state in instances.items():
        if state in WAITING_TO_RETRY_STATES:
            due = snapshots[(spec.task_id, map_index)].next_try_at
            if due is None or due <= now:
                plan.ready.append((spec.task_id, map_index))
    if not pending:
        return
    readiness = evaluate_trigger_rule(spec.trigger_rule, upstream)
    if readiness is Readiness.WAIT:
        return
    if readiness is not Readiness.RUN:
        final = TI.SKIPPED if readiness is Readiness.SKIP else TI.UPSTREAM_FAILED
        for map_index in pending:
            _decide(plan, states, (spec.task_id, map_index), final)
        return
    if spec.is_mapped and list(instances) == [-1]:
        count = _expanded_count(spec, states, map_lengths)
        if count == 0:
            _decide(plan, states, (spec.task_id, -1), TI.SKIPPED)
            return
        plan.expand[spec.task_id] = count
        states[spec.task_id] = dict.fromkeys(range(count))
        pending = list(range(count))
    _release(plan, spec, states, pending, past_states)


def _release(
    plan: RunPlan,
    spec: TaskSpec,
    states: dict[str, dict[int, TaskInstanceState | None]],
    pending: list[int],
    past_states: Mapping[Key, TaskInstanceState | None] | None,
) -> None:
    """Mark ready the pending instances that depends_on_past and per-run limits allow."""
    limit = spec.max_active_tis_per_dagrun
    active = sum(
        1 for s in states[spec.task_id].values() if s in (TI.SCHEDULED, TI.QUEUED, TI.RUNNING)
    )
    for map_index in sorted(pending):
        if spec.depends_on_past and not _past_allows(spec, map_index, past_states):
            continue
        if limit is not None and active >= limit:
            break
        if spec.is_empty:
            _decide(plan, states, (spec.task_id, map_index), TI.SUCCESS)
            continue
        plan.ready.append((spec.task_id, map_index))
        active += 1


def _past_allows(
    spec: TaskSpec, map_index: int, past_states: Mapping[Key, TaskInstanceState | None] | None
) -> bool:
    if past_states is None:  # the first run ever: nothing to depend on (as in Airflow)
        return True
    if past_states.get((spec.task_id, map_index), TI.SUCCESS) not in SUCCESS_STATES:
        return False
    if spec.wait_for_downstream:
        return all(
            state in SUCCESS_STATES
            for (task_id, _), state in past_states.items()
            if task_id in spec.downstream
        )
    return True


def _expanded_count(
    spec: TaskSpec,
    states: Mapping[str, Mapping[int, TaskInstanceState | None]],
    map_lengths: Mapping[tuple[str, str], int],
) -> int:
    count = 1
    for source in (spec.expand or {}).values():
        if "length" in source:
            count *= int(source["length"])
            continue
        task_id, key = source["xcom"]["task_id"], source["xcom"]["key"]
        upstream = states.get(task_id, {})
        if any(m >= 0 for m in upstream):  # a mapped upstream: one element per instance
            count *= sum(1 for s in upstream.values() if s is not TI.REMOVED)
        else:
            count *= map_lengths.get((task_id, key), 0)
    return count
