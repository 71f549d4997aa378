"""Triggers: deferred task instances and the waits the triggerer runs for them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradewind.models.base import JsonText, UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trigger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("classpath", sa.String(length=1000), nullable=False),
        sa.Column("kwargs", JsonText(), nullable=False),
        sa.Column("created_date", UtcDateTime(timezone=True), nullable=False),
        sa.Column("triggerer_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger")),
    )
    op.create_index(op.f("ix_trigger_triggerer_id"), "trigger", ["triggerer_id"], unique=False)
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("trigger_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("trigger_timeout", UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("next_method", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("next_kwargs", JsonText(), nullable=True))
        batch.create_index(batch.f("ix_task_instance_trigger_id"), ["trigger_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_task_instance_trigger_id_trigger"),
            "trigger",
            ["trigger_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_constraint(batch.f("fk_task_instance_trigger_id_trigger"), type_="foreignkey")
        batch.drop_index(batch.f("ix_task_instance_trigger_id"))
        batch.drop_column("next_kwargs")
        batch.drop_column("next_method")
        batch.drop_column("trigger_timeout")
        batch.drop_column("trigger_id")
    op.drop_index(op.f("ix_trigger_triggerer_id"), table_name="trigger")
    op.drop_table("trigger")
