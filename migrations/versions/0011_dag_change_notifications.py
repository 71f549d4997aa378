"""Postgres announces every change to the DAG tables (``NOTIFY tradewind_dag_changed``),
so a webserver may keep the DAG list it served until the next change

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement-level: one notification per statement, and Postgres folds identical
# notifications of a transaction into one, delivered when (and only if) it commits.
_FUNCTION = """
CREATE OR REPLACE FUNCTION tradewind_dag_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tradewind_dag_changed', '');
    RETURN NULL;
END
$$
"""
TABLES = ("dag", "dag_tag")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no notifications; its webserver does not cache
    op.execute(_FUNCTION)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER tradewind_{table}_changed "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tradewind_dag_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS tradewind_{table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS tradewind_dag_changed()")
