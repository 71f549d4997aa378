"""The serialized form of a DAG: plain JSON, stored as a DAG version.

The scheduler and the webserver never import a DAG file; they read this. `serialize_dag`
turns a DAG object into a deterministic dict (hashed to detect changes);
`SerializedDag.from_dict` gives the read-only view the planner works on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tradewind.state import RetryPolicy, TriggerRule

if TYPE_CHECKING:
    from tradewind.schedules import Schedule
    from tradewind.sdk.baseoperator import BaseOperator
    from tradewind.sdk.dag import DAG

FORMAT_VERSION = 1


def serialize_dag(dag: DAG) -> dict[str, Any]:
    """A JSON-safe, deterministic description of the DAG (no code)."""
    weights = _effective_weights(dag)
    return {
        "__format": FORMAT_VERSION,
        "dag_id": dag.dag_id,
        "dag_display_name": dag.dag_display_name,
        "fileloc": dag.fileloc,
        "description": dag.description,
        "schedule": dag.schedule.serialize(),
        "timetable_summary": dag.schedule.summary,
        "timetable_description": dag.schedule.description,
        "timetable_type": dag.schedule.type_name,
        "timezone": dag.timezone,
        "start_date": _iso(dag.start_date),
        "end_date": _iso(dag.end_date),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "max_consecutive_failed_dag_runs": dag.max_consecutive_failed_dag_runs,
        "dagrun_timeout": _seconds(dag.dagrun_timeout),
        "tags": list(dag.tags),
        "owner": dag.owner,
        "owner_links": dict(dag.owner_links),
        "doc_md": dag.doc_md,
        "params": dag.params.dump(),
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "render_template_as_native_obj": dag.render_template_as_native_obj,
        "template_searchpath": list(dag.template_searchpath),
        "fail_fast": dag.fail_fast,
        "has_on_success_callback": bool(dag.on_success_callback),
        "has_on_failure_callback": bool(dag.on_failure_callback),
        "default_args": jsonable(dag.default_args),
        "task_group": dag.task_group.dump(),
        "tasks": [_serialize_task(t, weights[t.task_id]) for t in dag.topological_sort()],
    }


def _serialize_task(task: BaseOperator, weight: int) -> dict[str, Any]:
    from tradewind.sdk.assets import outlet_assets
    from tradewind.sdk.mapped import MappedOperator

    operator_class = task.operator_class if isinstance(task, MappedOperator) else type(task)
    serialized = {
        "task_id": task.task_id,
        "task_display_name": task.task_display_name,
        "label": task.label,
        "task_type": task.task_type,
        "operator_name": task.operator_name,
        "class_ref": {
            "module_path": operator_class.__module__,
            "class_name": operator_class.__name__,
        },
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "task_group": task.task_group.group_id if task.task_group else None,
        "trigger_rule": str(task.trigger_rule),
        "retries": task.retries,
        "retry_delay": _seconds(task.retry_delay),
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "max_retry_delay": _seconds(task.max_retry_delay),
        "execution_timeout": _seconds(task.execution_timeout),
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "queue": task.queue,
        "priority_weight": task.priority_weight,
        "weight_rule": task.weight_rule,
        "weight": weight,
        "depends_on_past": task.depends_on_past,
        "ignore_first_depends_on_past": task.ignore_first_depends_on_past,
        "wait_for_downstream": task.wait_for_downstream,
        "max_active_tis_per_dag": task.max_active_tis_per_dag,
        "max_active_tis_per_dagrun": task.max_active_tis_per_dagrun,
        "owner": task.owner,
        "email": list(task.email),
        "email_on_failure": task.email_on_failure,
        "email_on_retry": task.email_on_retry,
        "doc_md": task.doc_md,
        "start_date": _iso(task.start_date),
        "end_date": _iso(task.end_date),
        "ui_color": operator_class.ui_color,
        "ui_fgcolor": operator_class.ui_fgcolor,
        "template_fields": list(getattr(operator_class, "template_fields", ())),
        "executor": task.executor,
        "executor_config": jsonable(task.executor_config),
        "is_empty": bool(operator_class.inherits_from_empty_operator and not task.has_callbacks),
        "has_callbacks": task.has_callbacks,
        "params": task.params.dump(),
        "is_mapped": task.is_mapped,
        "expand": task.expand_sources() if isinstance(task, MappedOperator) else None,
    }
    outlets = outlet_assets(getattr(task, "outlets", None) or [])
    if outlets:  # only then: adding the key would make a new version of every DAG
        serialized["outlets"] = [a.dump()["asset"] for a in outlets]
    return serialized


def _effective_weights(dag: DAG) -> dict[str, int]:
    """Airflow's weight rules: own weight plus all downstream (or upstream) weights."""
    weights = {}
    for task_id, task in dag.task_dict.items():
        if task.weight_rule == "absolute":
            weights[task_id] = task.priority_weight
            continue
        relatives = dag.get_flat_relative_ids(task_id, upstream=task.weight_rule == "upstream")
        weights[task_id] = task.priority_weight + sum(
            dag.task_dict[r].priority_weight for r in relatives
        )
    return weights


def content_hash(serialized: Mapping[str, Any]) -> str:
    canonical = json.dumps(serialized, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


_PLAIN_COLLECTIONS = (list, tuple, set, frozenset)


def jsonable(value: Any) -> Any:
    """A JSON-safe rendering of arbitrary values (for display, e.g. default_args)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    # Plain dicts and lists skip the ABC's isinstance check (Mapping), which writes to
    # its caches: a try's forked child pays for that in copied pages.
    kind = type(value)
    if kind is dict or (kind not in _PLAIN_COLLECTIONS and isinstance(value, Mapping)):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if callable(value):
        return f"<callable {getattr(value, '__qualname__', type(value).__name__)}>"
    return repr(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _delta(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


# --- the read side --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What the scheduler needs to know about one task."""

    task_id: str
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    trigger_rule: TriggerRule
    retry_policy: RetryPolicy
    pool: str
    pool_slots: int
    queue: str
    weight: int
    operator: str
    operator_name: str
    is_empty: bool
    is_mapped: bool
    expand: Mapping[str, Mapping[str, Any]] | None
    depends_on_past: bool
    ignore_first_depends_on_past: bool
    wait_for_downstream: bool
    max_active_tis_per_dag: int | None
    max_active_tis_per_dagrun: int | None
    execution_timeout: timedelta | None
    executor_config: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSpec:
        return cls(
            task_id=data["task_id"],
            upstream=tuple(data["upstream"]),
            downstream=tuple(data["downstream"]),
            trigger_rule=TriggerRule(data["trigger_rule"]),
            retry_policy=RetryPolicy(
                retries=data["retries"],
                retry_delay=timedelta(seconds=data["retry_delay"]),
                retry_exponential_backoff=data["retry_exponential_backoff"],
                max_retry_delay=_delta(data["max_retry_delay"]),
            ),
            pool=data["pool"],
            pool_slots=data["pool_slots"],
            queue=data["queue"],
            weight=data["weight"],
            operator=data["task_type"],
            operator_name=data["operator_name"],
            is_empty=data["is_empty"],
            is_mapped=data["is_mapped"],
            expand=data["expand"],
            depends_on_past=data["depends_on_past"],
            ignore_first_depends_on_past=data["ignore_first_depends_on_past"],
            wait_for_downstream=data["wait_for_downstream"],
            max_active_tis_per_dag=data["max_active_tis_per_dag"],
            max_active_tis_per_dagrun=data["max_active_tis_per_dagrun"],
            execution_timeout=_delta(data["execution_timeout"]),
            executor_config=data.get("executor_config") or {},
            raw=data,
        )

    def xcom_sources(self) -> list[tuple[str, str]]:
        """(task_id, key) of each upstream XCom this mapped task expands over."""
        return [
            (source["xcom"]["task_id"], source["xcom"]["key"])
            for source in (self.expand or {}).values()
            if "xcom" in source
        ]


@dataclass(frozen=True)
class SerializedDag:
    """A DAG as stored: its tasks in dependency order and its run options."""

    dag_id: str
    tasks: Mapping[str, TaskSpec]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SerializedDag:
        tasks = {t["task_id"]: TaskSpec.from_dict(t) for t in data["tasks"]}
        return cls(dag_id=data["dag_id"], tasks=tasks, raw=data)

    @cached_property
    def expands_over_xcom(self) -> bool:
        """Whether a mapped task of this DAG takes its length from an upstream XCom."""
        return any(spec.xcom_sources() for spec in self.tasks.values())

    @cached_property
    def leaves(self) -> tuple[str, ...]:
        return tuple(t.task_id for t in self.tasks.values() if not t.downstream)

    @cached_property
    def schedule(self) -> Schedule:
        from tradewind.schedules import deserialize_schedule

        return deserialize_schedule(self.raw["schedule"])

    @property
    def start_date(self) -> datetime | None:
        return _datetime(self.raw["start_date"])

    @property
    def end_date(self) -> datetime | None:
        return _datetime(self.raw["end_date"])

    @property
    def catchup(self) -> bool:
        return bool(self.raw["catchup"])

    @property
    def max_active_runs(self) -> int:
        return int(self.raw["max_active_runs"])

    @property
    def max_active_tasks(self) -> int:
        return int(self.raw["max_active_tasks"])

    @property
    def dagrun_timeout(self) -> timedelta | None:
        return _delta(self.raw["dagrun_timeout"])

    @property
    def params(self) -> Mapping[str, Any]:
        return self.raw["params"]  # type: ignore[no-any-return]

    def task_ids(self) -> Iterable[str]:
        return self.tasks.keys()
