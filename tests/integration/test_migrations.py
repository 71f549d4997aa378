"""The schema comes from Alembic migrations, on SQLite and Postgres alike."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tradewind.db import check_schema, current_revision, head_revision, migrate
from tradewind.models import Base, Pool

pytestmark = pytest.mark.integration


def test_migrated_schema_equals_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_migrate_is_idempotent_and_reaches_head(engine: Engine) -> None:
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    check_schema(engine)


def test_default_pool_exists_after_migration(engine: Engine) -> None:
    with engine.connect() as conn:
        pools = conn.execute(select(Pool.pool, Pool.slots)).all()
    assert ("default_pool", 128) in [tuple(p) for p in pools]
