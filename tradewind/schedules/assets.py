"""`AssetSchedule`: a DAG that runs when assets it depends on are updated, after
Airflow's AssetTriggeredTimetable. It never has a time-based run; the scheduler creates
its runs from asset events (see `scheduler.asset_runs`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from tradewind.schedules.base import DagRunInfo, Schedule, TimeRestriction
from tradewind.sdk.assets import AssetCondition


@dataclass(frozen=True)
class AssetSchedule(Schedule):
    condition: AssetCondition
    type_name: ClassVar[str] = "AssetTriggeredTimetable"
    can_be_scheduled: ClassVar[bool] = False

    @property
    def summary(self) -> str:
        return "Asset"

    @property
    def description(self) -> str:
        return f"Triggered by assets: {self.condition!r}"

    def next_dagrun_info(
        self, *, last_automated: DagRunInfo | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        return None

    def serialize(self) -> dict[str, Any]:
        return {"type": "assets", "condition": self.condition.dump()}
