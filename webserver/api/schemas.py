"""Request and response bodies of /api/v2, named and shaped as Airflow 3's.

The official client validates strictly (an int must be a JSON integer, enums are
closed, required keys must be non-null), so the types here are exactly the reference's.
Request bodies forbid unknown keys, as Airflow's do.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Text the metadata database can store: Postgres refuses a NUL character, and no database
# takes a lone surrogate (which fails as "not a valid string" once a pattern applies).
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]


# The widest value of the metadata database's integer columns (a Postgres INTEGER): a larger
# map index, try number, id or slot count could match or fit no row, and SQLite's driver
# cannot even bind one past 2**63.
DB_INT_MAX = 2**31 - 1
MapIndex = Annotated[int, Field(ge=-1, le=DB_INT_MAX)]
TryNumber = Annotated[int, Field(ge=0, le=DB_INT_MAX)]
RowId = Annotated[int, Field(ge=1, le=DB_INT_MAX)]
Slots = Annotated[int, Field(ge=-1, le=DB_INT_MAX)]


def _not_null(schema: dict[str, Any]) -> None:
    """Documents an optional field as one that may be left out but not sent as null
    (the route refuses a null)."""
    schema.update(next(s for s in schema.pop("anyOf") if s.get("type") != "null"))


# --- enums ------------------------------------------------------------------------------


class DagRunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class DagRunMutableState(enum.StrEnum):
    QUEUED = "queued"
    SUCCESS = "success"
    FAILED = "failed"


class DagRunType(enum.StrEnum):
    BACKFILL = "backfill"
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    OPERATOR_TRIGGERED = "operator_triggered"
    ASSET_TRIGGERED = "asset_triggered"
    ASSET_MATERIALIZATION = "asset_materialization"


class DagRunTriggeredByType(enum.StrEnum):
    CLI = "cli"
    OPERATOR = "operator"
    REST_API = "rest_api"
    UI = "ui"
    TEST = "test"
    TIMETABLE = "timetable"
    ASSET = "asset"
    BACKFILL = "backfill"


class TagsMatchMode(enum.StrEnum):
    ANY = "any"
    ALL = "all"


# --- errors -----------------------------------------------------------------------------


class HTTPExceptionResponse(BaseModel):
    """The body of an error answer (a 422 has FastAPI's list of validation errors)."""

    detail: str | dict[str, Any]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route may give, for its OpenAPI document (as Airflow's has them)."""
    return {code: {"model": HTTPExceptionResponse} for code in codes}


# --- auth, health, version ------------------------------------------------------------


class LoginBody(Body):
    username: Text = Field(min_length=1, max_length=256)
    password: Text = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    access_token: str


class BaseInfo(BaseModel):
    status: str | None


class SchedulerInfo(BaseInfo):
    latest_scheduler_heartbeat: str | None


class TriggererInfo(BaseInfo):
    latest_triggerer_heartbeat: str | None


class DagProcessorInfo(BaseInfo):
    latest_dag_processor_heartbeat: str | None


class HealthInfoResponse(BaseModel):
    metadatabase: BaseInfo
    scheduler: SchedulerInfo
    triggerer: TriggererInfo
    dag_processor: DagProcessorInfo | None = None


class VersionInfo(BaseModel):
    version: str
    git_version: str | None


# --- DAGs -----------------------------------------------------------------------------


class DagTagResponse(BaseModel):
    name: str
    dag_id: str
    dag_display_name: str


class DagVersionResponse(BaseModel):
    id: str
    version_number: int
    dag_id: str
    bundle_name: str | None
    bundle_version: str | None
    created_at: datetime
    dag_display_name: str
    bundle_url: str | None = None


class DAGResponse(BaseModel):
    dag_id: str
    dag_display_name: str
    is_paused: bool
    is_stale: bool
    last_parsed_time: datetime | None
    last_parse_duration: float | None
    last_expired: datetime | None
    bundle_name: str | None
    bundle_version: str | None
    relative_fileloc: str | None
    fileloc: str
    description: str | None
    timetable_summary: str | None
    timetable_description: str | None
    timetable_partitioned: bool
    timetable_periodic: bool
    tags: list[DagTagResponse]
    max_active_tasks: int
    max_active_runs: int | None
    max_consecutive_failed_dag_runs: int
    has_task_concurrency_limits: bool
    has_import_errors: bool
    next_dagrun_logical_date: datetime | None
    next_dagrun_data_interval_start: datetime | None
    next_dagrun_data_interval_end: datetime | None
    next_dagrun_run_after: datetime | None
    allowed_run_types: list[DagRunType] | None
    owners: list[str]
    is_backfillable: bool
    file_token: str


class DAGCollectionResponse(BaseModel):
    dags: list[DAGResponse]
    total_entries: int


class DAGDetailsResponse(DAGResponse):
    catchup: bool
    dag_run_timeout: str | None
    asset_expression: dict[str, Any] | None
    doc_md: str | None
    start_date: datetime | None
    end_date: datetime | None
    is_paused_upon_creation: bool | None
    params: dict[str, Any] | None
    render_template_as_native_obj: bool
    template_search_path: list[str] | None
    timezone: str | None
    last_parsed: datetime | None
    default_args: dict[str, Any] | None
    owner_links: dict[str, str] | None = None
    concurrency: int
    latest_dag_version: DagVersionResponse | None
    is_favorite: bool = False
    active_runs_count: int = 0


class DAGPatchBody(Body):
    is_paused: bool


# --- tasks ----------------------------------------------------------------------------


class TimeDelta(BaseModel):
    type_: str = Field(default="TimeDelta", alias="__type", serialization_alias="__type")
    days: int
    seconds: int
    microseconds: int

    model_config = ConfigDict(populate_by_name=True)


class TaskResponse(BaseModel):
    task_id: str | None
    task_display_name: str | None
    owner: str | None
    start_date: datetime | None
    end_date: datetime | None
    trigger_rule: str | None
    depends_on_past: bool
    wait_for_downstream: bool
    retries: float | None
    queue: str | None
    pool: str | None
    pool_slots: float | None
    execution_timeout: TimeDelta | None
    retry_delay: TimeDelta | None
    retry_exponential_backoff: float
    priority_weight: float | None
    weight_rule: str | None
    ui_color: str | None
    ui_fgcolor: str | None
    template_fields: list[str] | None
    downstream_task_ids: list[str] | None
    doc_md: str | None
    operator_name: str | None
    params: dict[str, Any] | None
    class_ref: dict[str, Any] | None
    is_mapped: bool | None
    extra_links: list[str]


class TaskCollectionResponse(BaseModel):
    tasks: list[TaskResponse]
    total_entries: int


# --- DAG runs ---------------------------------------------------------------------------


class DAGRunResponse(BaseModel):
    dag_run_id: str
    dag_id: str
    logical_date: datetime | None
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime
    last_scheduling_decision: datetime | None
    run_type: DagRunType
    state: DagRunState
    triggered_by: DagRunTriggeredByType | None
    triggering_user_name: str | None
    conf: dict[str, Any] | None
    note: str | None
    dag_versions: list[DagVersionResponse]
    bundle_version: str | None
    dag_display_name: str
    partition_key: str | None = None


class DAGRunCollectionResponse(BaseModel):
    dag_runs: list[DAGRunResponse]
    total_entries: int | None
    total_entries_limit: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None


class TriggerDAGRunPostBody(Body):
    # The key is required (the client always sends it); null means "no logical date".
    logical_date: AwareDatetime | None
    dag_run_id: Text | None = Field(default=None, min_length=1, max_length=250)
    data_interval_start: AwareDatetime | None = None
    data_interval_end: AwareDatetime | None = None
    run_after: AwareDatetime | None = None
    conf: dict[str, Any] | None = None
    note: Text | None = Field(default=None, max_length=1000)
    partition_key: Text | None = None

    # The document says what the validator below checks, as far as JSON Schema can: the
    # two ends of the interval come together or not at all (not that start <= end).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {
                        "data_interval_start": {"type": "null"},
                        "data_interval_end": {"type": "null"},
                    }
                },
                {
                    "required": ["data_interval_start", "data_interval_end"],
                    "properties": {
                        "data_interval_start": {"type": "string"},
                        "data_interval_end": {"type": "string"},
                    },
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _interval_in_pairs(self) -> TriggerDAGRunPostBody:
        if (self.data_interval_start is None) != (self.data_interval_end is None):
            raise ValueError("data_interval_start and data_interval_end go together")
        if (
            self.data_interval_start is not None
            and self.data_interval_end is not None
            and self.data_interval_start > self.data_interval_end
        ):
            raise ValueError("data_interval_start must not be after data_interval_end")
        return self


class DAGRunPatchBody(Body):
    state: DagRunMutableState | None = None
    note: Text | None = Field(default=None, max_length=1000)


# --- task instances, logs, XCom ------------------------------------------------------------


class TaskInstanceState(enum.StrEnum):
    REMOVED = "removed"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    RESTARTING = "restarting"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    AWAITING_INPUT = "awaiting_input"


class TaskInstanceHistoryResponse(BaseModel):
    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    state: TaskInstanceState | None
    try_number: int
    max_tries: int
    task_display_name: str
    dag_display_name: str
    hostname: str | None
    unixname: str | None
    pool: str
    pool_slots: int
    queue: str | None
    priority_weight: int | None
    operator: str | None
    operator_name: str | None = None
    queued_when: datetime | None
    scheduled_when: datetime | None
    pid: int | None
    executor: str | None
    executor_config: str
    dag_version: DagVersionResponse | None


class TriggerResponse(BaseModel):
    id: int
    classpath: str
    kwargs: str
    created_date: datetime
    queue: str | None = None
    triggerer_id: int | None


class JobResponse(BaseModel):
    id: int
    dag_id: str | None = None
    state: str | None
    job_type: str | None
    start_date: datetime | None
    end_date: datetime | None
    latest_heartbeat: datetime | None
    executor_class: str | None
    hostname: str | None
    unixname: str | None = None


class TaskInstanceResponse(TaskInstanceHistoryResponse):
    id: str
    logical_date: datetime | None
    run_after: datetime
    note: str | None
    rendered_map_index: str | None
    rendered_fields: dict[str, Any] | None = None
    trigger: TriggerResponse | None = None
    triggerer_job: JobResponse | None = None
    # Tradewind's addition: why a queued try has not started (e.g. no worker on its queue).
    queued_reason: str | None = None


class TaskInstanceCollectionResponse(BaseModel):
    task_instances: list[TaskInstanceResponse]
    total_entries: int | None
    total_entries_limit: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None


class TaskInstanceHistoryCollectionResponse(BaseModel):
    task_instances: list[TaskInstanceHistoryResponse]
    total_entries: int


class TaskInstancesLogResponse(BaseModel):
    content: list[str]
    continuation_token: str | None


class XComResponse(BaseModel):
    key: str
    timestamp: datetime
    logical_date: datetime | None
    map_index: int
    task_id: str
    dag_id: str
    run_id: str
    dag_display_name: str
    task_display_name: str
    run_after: datetime


class XComResponseNative(XComResponse):
    value: Any


class XComCollectionResponse(BaseModel):
    xcom_entries: list[XComResponse]
    total_entries: int


# --- variables, connections, pools, import errors -------------------------------------------


class VariableBody(Body):
    key: Text = Field(min_length=1, max_length=250)
    value: Any
    description: Text | None = None


class VariableResponse(BaseModel):
    key: str
    value: str | None
    description: str | None
    is_encrypted: bool
    team_name: str | None = None


class VariableCollectionResponse(BaseModel):
    variables: list[VariableResponse]
    total_entries: int


class ConnectionBody(Body):
    connection_id: str = Field(min_length=1, max_length=200, pattern=r"^[\w.-]+$")
    conn_type: Text = Field(min_length=1, max_length=500)
    description: Text | None = None
    host: Text | None = Field(default=None, max_length=500)
    login: Text | None = None
    # JSON key "schema" (as Airflow's); the attribute may not shadow BaseModel.schema.
    schema_: Text | None = Field(default=None, alias="schema", max_length=500)
    port: int | None = Field(default=None, ge=0, le=65535)
    password: Text | None = None
    extra: Text | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConnectionResponse(BaseModel):
    connection_id: str
    conn_type: str
    description: str | None
    host: str | None
    login: str | None
    schema_: str | None = Field(serialization_alias="schema")
    port: int | None
    password: str | None
    extra: str | None
    team_name: str | None = None


class ConnectionCollectionResponse(BaseModel):
    connections: list[ConnectionResponse]
    total_entries: int


class PoolBody(Body):
    name: Text = Field(min_length=1, max_length=256)
    slots: Slots
    description: Text | None = None
    include_deferred: bool = False


class PoolPatchBody(Body):
    pool: Text | None = Field(default=None, min_length=1, max_length=256)
    slots: Slots | None = Field(default=None, json_schema_extra=_not_null)
    description: Text | None = None
    include_deferred: bool | None = Field(default=None, json_schema_extra=_not_null)


class PoolResponse(BaseModel):
    name: str
    slots: int
    description: str | None
    include_deferred: bool
    occupied_slots: int
    running_slots: int
    queued_slots: int
    scheduled_slots: int
    open_slots: int
    deferred_slots: int
    team_name: str | None = None


class PoolCollectionResponse(BaseModel):
    pools: list[PoolResponse]
    total_entries: int


class ImportErrorResponse(BaseModel):
    import_error_id: int
    timestamp: datetime
    filename: str
    bundle_name: str | None
    stack_trace: str


class ImportErrorCollectionResponse(BaseModel):
    import_errors: list[ImportErrorResponse]
    total_entries: int


# --- clearing and marking ----------------------------------------------------------------------


class MarkableState(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


class PatchTaskInstanceBody(Body):
    new_state: MarkableState | None = Field(default=None, json_schema_extra=_not_null)
    note: Text | None = Field(default=None, max_length=1000)
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False

    @model_validator(mode="after")
    def _no_null_state(self) -> PatchTaskInstanceBody:
        if "new_state" in self.model_fields_set and self.new_state is None:
            raise ValueError("new_state may not be null")
        return self


class ClearTaskInstancesBody(Body):
    dry_run: bool = True
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    only_failed: bool = True
    only_running: bool = False
    reset_dag_runs: bool = True
    task_ids: list[Text | tuple[Text, int]] | None = None
    dag_run_id: Text | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    run_on_latest_version: bool | None = None
    prevent_running_task: bool = False
    note: Text | None = Field(default=None, max_length=1000)


class DAGRunClearBody(Body):
    dry_run: bool = True
    only_failed: bool = False
    only_new: bool = False
    run_on_latest_version: bool | None = None
    note: Text | None = Field(default=None, max_length=1000)


class ClearTaskInstanceCollectionResponse(BaseModel):
    task_instances: list[TaskInstanceResponse]
    total_entries: int


# --- backfills -------------------------------------------------------------------------


class BackfillPostBody(Body):
    dag_id: Text = Field(min_length=1, max_length=250)
    from_date: AwareDatetime
    to_date: AwareDatetime
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] = Field(default_factory=dict)
    reprocess_behavior: Literal["none", "failed", "completed"] = "none"
    max_active_runs: int = Field(default=10, ge=1, le=DB_INT_MAX)


class BackfillProgress(BaseModel):
    """Tradewind's addition: how far the backfill has come, counted in dates."""

    total: int
    succeeded: int
    failed: int
    running: int
    queued: int
    pending: int
    skipped: int


class BackfillResponse(BaseModel):
    id: int
    dag_id: str
    from_date: datetime
    to_date: datetime
    dag_run_conf: dict[str, Any]
    is_paused: bool
    reprocess_behavior: Literal["none", "failed", "completed"]
    max_active_runs: int
    created_at: datetime
    completed_at: datetime | None
    updated_at: datetime
    dag_display_name: str
    run_backwards: bool
    progress: BackfillProgress


class BackfillCollectionResponse(BaseModel):
    backfills: list[BackfillResponse]
    total_entries: int


class DryRunBackfillResponse(BaseModel):
    logical_date: datetime
    # Tradewind's addition: what creating the backfill now would do with this date.
    existing_state: str | None = None
    skip_reason: str | None = None


class DryRunBackfillCollectionResponse(BaseModel):
    backfills: list[DryRunBackfillResponse]
    total_entries: int


# --- assets ----------------------------------------------------------------------------


class DagScheduleAssetReferenceResponse(BaseModel):
    dag_id: str
    created_at: datetime
    updated_at: datetime


class TaskOutletAssetReferenceResponse(BaseModel):
    dag_id: str
    task_id: str
    created_at: datetime
    updated_at: datetime


class LastAssetEventResponse(BaseModel):
    id: int | None
    timestamp: datetime | None


class AssetResponse(BaseModel):
    id: int
    name: str
    uri: str
    group: str
    extra: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    scheduled_dags: list[DagScheduleAssetReferenceResponse]
    producing_tasks: list[TaskOutletAssetReferenceResponse]
    consuming_tasks: list[TaskOutletAssetReferenceResponse]
    aliases: list[dict[str, Any]]
    last_asset_event: LastAssetEventResponse | None = None


class AssetCollectionResponse(BaseModel):
    assets: list[AssetResponse]
    total_entries: int


class DagRunAssetReference(BaseModel):
    run_id: str
    dag_id: str
    logical_date: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    state: str
    data_interval_start: datetime | None
    data_interval_end: datetime | None


class AssetEventResponse(BaseModel):
    id: int
    asset_id: int
    uri: str | None
    name: str | None
    group: str | None
    extra: dict[str, Any] | None
    source_task_id: str | None
    source_dag_id: str | None
    source_run_id: str | None
    source_map_index: int
    created_dagruns: list[DagRunAssetReference]
    timestamp: datetime


class AssetEventCollectionResponse(BaseModel):
    asset_events: list[AssetEventResponse]
    total_entries: int


class CreateAssetEventsBody(Body):
    asset_id: RowId
    extra: dict[str, Any] = Field(default_factory=dict)
