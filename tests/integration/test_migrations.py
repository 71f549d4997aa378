"""The schema comes from Alembic migrations, on SQLite and Postgres alike."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tradewind.db import check_schema, current_revision, declared_head, head_revision, migrate
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


def test_the_declared_head_is_alembic_s_head(engine: Engine) -> None:
    assert declared_head() == head_revision(engine)


def test_an_up_to_date_database_is_checked_without_loading_alembic(
    engine: Engine, db_url: str
) -> None:
    migrate(engine)
    probe = (
        "import sys; from tradewind.db import ensure_schema, make_engine; "
        "from tradewind.settings import get_settings; "
        "ensure_schema(make_engine(get_settings())); print('alembic' in sys.modules)"
    )
    env = {**os.environ, "TRADEWIND_DATABASE_URL": db_url}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
