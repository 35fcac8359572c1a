"""Alembic environment: runs the migrations on the connection ``database.migrate`` hands over (or on a URL)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from database.engine import make_engine
from database.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database: pass a connection via database.migrate, sqlalchemy.url or DATABASE_URL")
    return url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    shared_connection = config.attributes.get("connection")
    if shared_connection is not None:
        _configure_and_run(shared_connection)
    else:
        engine = make_engine(_url())
        try:
            with engine.connect() as connection:
                _configure_and_run(connection)
        finally:
            engine.dispose()
