"""Worker queues: the queues a worker job listens to, and why a try is still queued

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 23:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("queues", sa.Text(), nullable=True))
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("queued_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("queued_reason")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("queues")
