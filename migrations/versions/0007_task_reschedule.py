"""Task reschedules: the pokes of sensors in reschedule mode

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tradewind.models.base import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_reschedule",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ti_id", sa.String(length=36), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("start_date", UtcDateTime(timezone=True), nullable=False),
        sa.Column("end_date", UtcDateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("reschedule_date", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ti_id"],
            ["task_instance.id"],
            name=op.f("fk_task_reschedule_ti_id_task_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_reschedule")),
    )
    op.create_index(op.f("ix_task_reschedule_ti_id"), "task_reschedule", ["ti_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_task_reschedule_ti_id"), table_name="task_reschedule")
    op.drop_table("task_reschedule")
