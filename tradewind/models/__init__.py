"""SQLAlchemy models of the metadata database. Importing this package imports them all,
so `Base.metadata` is complete (Alembic relies on it)."""

from tradewind.models.asset import (
    AssetDagRunQueue,
    AssetEvent,
    AssetModel,
    DagRunAssetEvent,
    DagScheduleAssetReference,
    TaskOutletAssetReference,
)
from tradewind.models.backfill import Backfill, BackfillDagRun
from tradewind.models.base import Base
from tradewind.models.dag import DagFile, DagModel, DagTag, DagVersion
from tradewind.models.dag_run import DagRun
from tradewind.models.log import LogChunk
from tradewind.models.misc import (
    DEFAULT_POOL_NAME,
    DEFAULT_POOL_SLOTS,
    CallbackRequest,
    Job,
    ParseImportError,
    Pool,
    User,
)
from tradewind.models.task_instance import (
    TaskInstance,
    TaskInstanceHistory,
    TaskMap,
    TaskReschedule,
)
from tradewind.models.trigger import Trigger
from tradewind.models.variable import ConnectionModel, VariableModel
from tradewind.models.xcom import XCom

__all__ = [
    "DEFAULT_POOL_NAME",
    "DEFAULT_POOL_SLOTS",
    "AssetDagRunQueue",
    "AssetEvent",
    "AssetModel",
    "Backfill",
    "BackfillDagRun",
    "Base",
    "CallbackRequest",
    "ConnectionModel",
    "DagFile",
    "DagModel",
    "DagRun",
    "DagRunAssetEvent",
    "DagScheduleAssetReference",
    "DagTag",
    "DagVersion",
    "Job",
    "LogChunk",
    "ParseImportError",
    "Pool",
    "TaskInstance",
    "TaskInstanceHistory",
    "TaskMap",
    "TaskOutletAssetReference",
    "TaskReschedule",
    "Trigger",
    "User",
    "VariableModel",
    "XCom",
]
