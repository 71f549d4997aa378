"""Backfills: the backfill and backfill_dag_run tables, and dag_run.backfill_id

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradewind.models.base import JsonText, UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backfill",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("from_date", UtcDateTime(timezone=True), nullable=False),
        sa.Column("to_date", UtcDateTime(timezone=True), nullable=False),
        sa.Column("dag_run_conf", JsonText(), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("reprocess_behavior", sa.String(length=20), nullable=False),
        sa.Column("max_active_runs", sa.Integer(), nullable=False),
        sa.Column("run_backwards", sa.Boolean(), nullable=False),
        sa.Column("triggering_user_name", sa.String(length=512), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_id"], ["dag.dag_id"], name=op.f("fk_backfill_dag_id_dag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill")),
    )
    op.create_index(op.f("ix_backfill_dag_id"), "backfill", ["dag_id"], unique=False)
    op.create_table(
        "backfill_dag_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backfill_id", sa.Integer(), nullable=False),
        sa.Column("dag_run_id", sa.Integer(), nullable=True),
        sa.Column("logical_date", UtcDateTime(timezone=True), nullable=False),
        sa.Column("run_after", UtcDateTime(timezone=True), nullable=False),
        sa.Column("data_interval_start", UtcDateTime(timezone=True), nullable=True),
        sa.Column("data_interval_end", UtcDateTime(timezone=True), nullable=True),
        sa.Column("exception_reason", sa.Text(), nullable=True),
        sa.Column("sort_ordinal", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfill.id"],
            name=op.f("fk_backfill_dag_run_backfill_id_backfill"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dag_run_id"],
            ["dag_run.id"],
            name=op.f("fk_backfill_dag_run_dag_run_id_dag_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_dag_run")),
    )
    op.create_index(
        op.f("ix_backfill_dag_run_backfill_id"), "backfill_dag_run", ["backfill_id"], unique=False
    )
    with op.batch_alter_table("dag_run") as batch:
        batch.add_column(sa.Column("backfill_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_dag_run_backfill_id"), ["backfill_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_dag_run_backfill_id_backfill"),
            "backfill",
            ["backfill_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("dag_run") as batch:
        batch.drop_constraint(batch.f("fk_dag_run_backfill_id_backfill"), type_="foreignkey")
        batch.drop_index(batch.f("ix_dag_run_backfill_id"))
        batch.drop_column("backfill_id")
    op.drop_index(op.f("ix_backfill_dag_run_backfill_id"), table_name="backfill_dag_run")
    op.drop_table("backfill_dag_run")
    op.drop_index(op.f("ix_backfill_dag_id"), table_name="backfill")
    op.drop_table("backfill")
