"""Alembic environment: the engine comes from ``config.attributes['engine']``, else from
``FLIGHT_FEES_DATABASE_URL`` / the embedded SQLite file."""

from __future__ import annotations

from alembic import context

from flight_fees.lib.db.engine import make_engine
from flight_fees.lib.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.in_transaction():
            connection.commit()


if context.is_offline_mode():
    raise SystemExit(
        "offline (SQL script) migrations are not supported; run `flight-fees db upgrade`"
    )
run_migrations_online()
