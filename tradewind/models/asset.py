"""Assets and their events; which DAGs consume and which tasks produce each; the
events waiting to trigger a consumer; and the events behind each asset-triggered run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.models.base import Base, JsonText, UtcDateTime, utcnow
from tradewind.models.dag import ID_LENGTH

URI_LENGTH = 1500


class AssetModel(Base):
    __tablename__ = "asset"
    __table_args__ = (UniqueConstraint("uri"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(URI_LENGTH))
    name: Mapped[str] = mapped_column(String(URI_LENGTH))
    group: Mapped[str] = mapped_column(String(URI_LENGTH), default="asset")
    extra: Mapped[dict[str, Any]] = mapped_column(JsonText, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class AssetEvent(Base):
    """An update of an asset: by a task's successful try (the source columns say which)
    or from outside through the REST API."""

    __tablename__ = "asset_event"
    __table_args__ = (Index("ix_asset_event_asset_id_timestamp", "asset_id", "timestamp"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id", ondelete="CASCADE"))
    extra: Mapped[dict[str, Any]] = mapped_column(JsonText, default=dict)
    source_dag_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    source_task_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    source_run_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    source_map_index: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DagScheduleAssetReference(Base):
    """A DAG whose schedule names the asset (a consumer)."""

    __tablename__ = "dag_schedule_asset_reference"

    asset_id: Mapped[int] = mapped_column(
        ForeignKey("asset.id", ondelete="CASCADE"), primary_key=True
    )
    dag_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dag.dag_id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TaskOutletAssetReference(Base):
    """A task that names the asset among its outlets (a producer)."""

    __tablename__ = "task_outlet_asset_reference"

    asset_id: Mapped[int] = mapped_column(
        ForeignKey("asset.id", ondelete="CASCADE"), primary_key=True
    )
    dag_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dag.dag_id", ondelete="CASCADE"), primary_key=True
    )
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AssetDagRunQueue(Base):
    """An asset updated since a consumer DAG's last asset-triggered run."""

    __tablename__ = "asset_dag_run_queue"

    asset_id: Mapped[int] = mapped_column(
        ForeignKey("asset.id", ondelete="CASCADE"), primary_key=True
    )
    target_dag_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dag.dag_id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DagRunAssetEvent(Base):
    """An event that contributed to an asset-triggered run."""

    __tablename__ = "dagrun_asset_event"

    dag_run_id: Mapped[int] = mapped_column(
        ForeignKey("dag_run.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(
        ForeignKey("asset_event.id", ondelete="CASCADE"), primary_key=True, index=True
    )


__all__ = [
    "AssetDagRunQueue",
    "AssetEvent",
    "AssetModel",
    "DagRunAssetEvent",
    "DagScheduleAssetReference",
    "TaskOutletAssetReference",
]
