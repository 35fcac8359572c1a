"""Migrations and engine setup: up, down and up again on both backends; schema equals the models; SQLite WAL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from database.engine import make_engine
from database.migrate import current_revision, downgrade, head_revision, migrate
from database.models import Base

APPLICATION_TABLES = {
    "orders",
    "fills",
    "positions",
    "signals",
    "candles_1m",
    "risk_state",
    "account_snapshots",
    "funding_payments",
    "round_trips",
    "sim_accounts",
}


def _tables(db_url: str) -> set[str]:
    engine = make_engine(db_url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _schema_differences(db_url: str, metadata: sa.MetaData) -> list[object]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert current_revision(db_url) is None

    migrate(db_url)
    assert current_revision(db_url) == head_revision() == "0003_signal_outcomes"
    assert _tables(db_url) >= APPLICATION_TABLES
    migrate(db_url)  # every start runs it: a no-op when already at head
    assert current_revision(db_url) == head_revision()

    downgrade(db_url)
    assert current_revision(db_url) is None
    assert _tables(db_url) & APPLICATION_TABLES == set()

    migrate(db_url)
    assert current_revision(db_url) == head_revision()
    assert _tables(db_url) >= APPLICATION_TABLES


def test_migrated_schema_matches_the_models_exactly(db_url: str) -> None:
    migrate(db_url)
    assert _schema_differences(db_url, Base.metadata) == []

    # The comparison is not vacuous: a model with one more column and one more index shows both.
    changed = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    orders = changed.tables["orders"]
    orders.append_column(sa.Column("extra_note", sa.Text(), nullable=True))
    sa.Index("ix_orders_strategy", orders.c.strategy)
    differences = _schema_differences(db_url, changed)
    kinds = sorted(difference[0] for difference in differences)  # type: ignore[index]
    assert kinds == ["add_column", "add_index"], differences


def test_sqlite_engine_is_in_wal_mode_and_creates_its_folder(tmp_path: Path) -> None:
    database_file = tmp_path / "not" / "yet" / "there" / "trader.db"
    db_url = f"sqlite:///{database_file}"
    migrate(db_url)
    assert database_file.is_file()

    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        engine.dispose()

    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    plain = sqlite3.connect(database_file)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        plain.close()


def test_sqlite_transactions_are_real(tmp_path: Path) -> None:
    """pysqlite's own transaction handling is off: a rolled-back transaction leaves no trace, DDL included."""
    engine = make_engine(f"sqlite:///{tmp_path / 'trader.db'}")
    try:
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
                connection.exec_driver_sql("INSERT INTO scratch VALUES (1)")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert "scratch" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_the_start_up_fast_path_knows_the_newest_revision() -> None:
    """Every start compares the database with HEAD_REVISION (one query, no Alembic): a new migration must move it."""
    from database.migrate import HEAD_REVISION

    assert HEAD_REVISION == head_revision()


def test_a_database_at_the_newest_revision_is_checked_without_loading_alembic(tmp_path) -> None:
    import subprocess
    import sys

    db_url = f"sqlite:///{tmp_path / 'fast.db'}"
    probe = ("import sys; from database.migrate import migrate; migrate(sys.argv[1]); "
             "print('alembic' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    first = subprocess.run([sys.executable, "-c", probe, db_url], cwd=root, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", probe, db_url], cwd=root, capture_output=True, text=True)
    assert (first.stdout.strip(), second.stdout.strip()) == ("True", "False"), first.stderr + second.stderr
    assert current_revision(db_url) == head_revision()
