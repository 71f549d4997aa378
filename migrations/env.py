"""Alembic environment: migrates the database Tradewind is configured for.

`tradewind db migrate` passes its engine in ``config.attributes["engine"]``; running
the ``alembic`` command directly falls back to Tradewind's settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from tradewind.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    from tradewind.db import make_engine
    from tradewind.settings import get_settings

    return make_engine(get_settings())


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
