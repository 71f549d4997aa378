"""XCom values may be null (a task may push None)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 20:16:19.721614
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("xcom", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.TEXT(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("xcom", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.TEXT(), nullable=False)
