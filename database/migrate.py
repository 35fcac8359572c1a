"""Apply or undo the Alembic migrations programmatically (no alembic.ini needed); called on every start.

Usage from a shell: ``python -m database.migrate sqlite:///database/trader.db [upgrade|downgrade|current] [rev]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from database.engine import SQLITE_BEGIN_OPTION, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The newest revision (tests/database/test_migrations.py holds it equal to Alembic's head). Every start checks the
#: database against it with one query, and loads Alembic (half a second) only when there is something to migrate.
HEAD_REVISION = "0003_signal_outcomes"
# Any fixed 64-bit number: concurrent starts against one PostgreSQL database take turns migrating.
_POSTGRES_MIGRATION_LOCK = 0x7472_6164_6572_0001


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at ``database/migrations``, optionally bound to an open connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision in ``database/migrations/versions``."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR / 'versions'}")
    return head


@contextmanager
def _migration_transaction(db: str | URL | Engine) -> Iterator[Connection]:
    """One transaction holding the migration lock; the engine is disposed afterwards if we made it."""
    engine = db if isinstance(db, Engine) else make_engine(db)
    try:
        with engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})  # SQLite: take the write lock
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK})
                yield connection
    finally:
        if engine is not db:
            engine.dispose()


def migrate(db_url: str | URL | Engine, revision: str = "head") -> None:
    """Bring the database up to ``revision`` (default: the newest), atomically; a no-op when already there."""
    if revision == "head" and _at_head(db_url):
        return
    from alembic import command

    with _migration_transaction(db_url) as connection:
        command.upgrade(alembic_config(connection), revision)


def _at_head(db: str | URL | Engine) -> bool:
    """One read: is the database already at :data:`HEAD_REVISION`? (Any doubt: no, and Alembic decides.)"""
    engine = db if isinstance(db, Engine) else make_engine(db)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except SQLAlchemyError:
        return False  # no table yet (a new database), or it cannot be read: Alembic will say
    finally:
        if engine is not db:
            engine.dispose()
    return [row[0] for row in rows] == [HEAD_REVISION]


def downgrade(db_url: str | URL | Engine, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (default: ``base``, i.e. drop every table the migrations made)."""
    from alembic import command

    with _migration_transaction(db_url) as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(db_url: str | URL | Engine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = db_url if isinstance(db_url, Engine) else make_engine(db_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if engine is not db_url:
            engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m database.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("db_url")
    parser.add_argument("action", nargs="?", default="upgrade", choices=("upgrade", "downgrade", "current"))
    parser.add_argument("revision", nargs="?")
    arguments = parser.parse_args(argv)
    if arguments.action == "upgrade":
        migrate(arguments.db_url, arguments.revision or "head")
    elif arguments.action == "downgrade":
        if not arguments.revision:
            parser.error("downgrade needs a target revision (e.g. base, or -1)")
        downgrade(arguments.db_url, arguments.revision)
    print(f"{current_revision(arguments.db_url)} (head is {head_revision()})")


if __name__ == "__main__":
    main()
