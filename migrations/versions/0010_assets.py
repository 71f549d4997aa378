"""Assets: assets, their events, consumer and producer references, the queue of events
waiting to trigger consumers, and the events behind each asset-triggered run

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradewind.models.base import JsonText, UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _asset_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["asset_id"], ["asset.id"], name=op.f(f"fk_{table}_asset_id_asset"), ondelete="CASCADE"
    )


def _dag_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["dag.dag_id"], name=op.f(f"fk_{table}_{column}_dag"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "asset",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uri", sa.String(length=1500), nullable=False),
        sa.Column("name", sa.String(length=1500), nullable=False),
        sa.Column("group", sa.String(length=1500), nullable=False),
        sa.Column("extra", JsonText(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset")),
        sa.UniqueConstraint("uri", name=op.f("uq_asset_uri")),
    )
    op.create_table(
        "asset_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("extra", JsonText(), nullable=False),
        sa.Column("source_dag_id", sa.String(length=250), nullable=True),
        sa.Column("source_task_id", sa.String(length=250), nullable=True),
        sa.Column("source_run_id", sa.String(length=250), nullable=True),
        sa.Column("source_map_index", sa.Integer(), nullable=True),
        sa.Column("timestamp", UtcDateTime(timezone=True), nullable=False),
        _asset_fk("asset_event"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_event")),
    )
    op.create_index(
        "ix_asset_event_asset_id_timestamp", "asset_event", ["asset_id", "timestamp"], unique=False
    )
    op.create_table(
        "dag_schedule_asset_reference",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        _asset_fk("dag_schedule_asset_reference"),
        _dag_fk("dag_schedule_asset_reference", "dag_id"),
        sa.PrimaryKeyConstraint("asset_id", "dag_id", name=op.f("pk_dag_schedule_asset_reference")),
    )
    op.create_table(
        "task_outlet_asset_reference",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        _asset_fk("task_outlet_asset_reference"),
        _dag_fk("task_outlet_asset_reference", "dag_id"),
        sa.PrimaryKeyConstraint(
            "asset_id", "dag_id", "task_id", name=op.f("pk_task_outlet_asset_reference")
        ),
    )
    op.create_table(
        "asset_dag_run_queue",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("target_dag_id", sa.String(length=250), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        _asset_fk("asset_dag_run_queue"),
        _dag_fk("asset_dag_run_queue", "target_dag_id"),
        sa.PrimaryKeyConstraint("asset_id", "target_dag_id", name=op.f("pk_asset_dag_run_queue")),
    )
    op.create_table(
        "dagrun_asset_event",
        sa.Column("dag_run_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_run_id"],
            ["dag_run.id"],
            name=op.f("fk_dagrun_asset_event_dag_run_id_dag_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["asset_event.id"],
            name=op.f("fk_dagrun_asset_event_event_id_asset_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dag_run_id", "event_id", name=op.f("pk_dagrun_asset_event")),
    )
    op.create_index(
        op.f("ix_dagrun_asset_event_event_id"), "dagrun_asset_event", ["event_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dagrun_asset_event_event_id"), table_name="dagrun_asset_event")
    op.drop_table("dagrun_asset_event")
    op.drop_table("asset_dag_run_queue")
    op.drop_table("task_outlet_asset_reference")
    op.drop_table("dag_schedule_asset_reference")
    op.drop_index("ix_asset_event_asset_id_timestamp", table_name="asset_event")
    op.drop_table("asset_event")
    op.drop_table("asset")
