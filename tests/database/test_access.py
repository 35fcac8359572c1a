"""Opening the database for a command: read-only commands never create one; each failure is one clear line."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from database.access import LOCK_WAIT_SEC, open_existing, open_for_writing
from database.errors import DatabaseMissing, DatabaseUnavailable
from database.migrate import head_revision


def test_open_existing_never_creates_a_sqlite_file_or_its_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new-folder' / 'trader.db'}"
    with pytest.raises(DatabaseMissing, match=r"^no database at .*trader\.db \(DB_URL=sqlite:///"):
        open_existing(url)
    assert not (tmp_path / "new-folder").exists()


def test_open_for_writing_migrates_and_open_existing_then_reads_it(db_url: str) -> None:
    with open_for_writing(db_url) as repository:
        assert repository.all_orders() == []
    with open_existing(db_url) as repository:
        assert repository.positions() == []


def test_open_existing_names_a_database_without_bot_tables_and_leaves_it_alone(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        sqlite3.connect(db_url.removeprefix("sqlite:///")).close()  # an empty file: a database without tables
    with pytest.raises(DatabaseMissing, match=r"has no bot tables \(it was never migrated\): nothing to show"):
        open_existing(db_url)
    engine = create_engine(db_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_open_existing_refuses_an_older_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trader.db'}"
    open_for_writing(url).close()
    connection = sqlite3.connect(tmp_path / "trader.db")
    connection.execute("UPDATE alembic_version SET version_num = '0000_older'")
    connection.commit()
    connection.close()
    with pytest.raises(DatabaseUnavailable, match=rf"is at schema 0000_older, this version of the bot needs "
                                                  rf"{head_revision()}: run `uv run main.py migrate` first"):
        open_existing(url)


def test_a_read_only_database_is_found_out_before_the_first_write(tmp_path: Path) -> None:
    open_for_writing(f"sqlite:///{tmp_path / 'trader.db'}").close()
    url = f"sqlite:///file:{tmp_path / 'trader.db'}?mode=ro&uri=true"
    with pytest.raises(DatabaseUnavailable, match=r"is read-only \(attempt to write a readonly database\)"):
        open_for_writing(url)
    with open_existing(url) as repository:  # reading it is fine
        assert repository.all_orders() == []


def test_a_locked_database_is_given_up_on_after_the_short_wait(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trader.db'}"
    open_for_writing(url).close()
    other = sqlite3.connect(tmp_path / "trader.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match=r"is locked by another process \(waited 3 s\)"):
            open_for_writing(url)
        assert LOCK_WAIT_SEC - 0.5 < time.monotonic() - started < LOCK_WAIT_SEC + 3
    finally:
        other.rollback()
        other.close()
    open_for_writing(url).close()  # and once the other process lets go, it opens (the busy timeout is restored)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(DatabaseUnavailable, match=r"notes\.txt is not a SQLite database"):
        open_for_writing(f"sqlite:///{tmp_path / 'notes.txt'}")


def test_postgresql_refusals_never_show_the_password(postgres_admin_url: str) -> None:
    wrong_database = postgres_admin_url.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(DatabaseUnavailable) as raised:
        open_for_writing(wrong_database.replace("postgres@", "postgres:hunter2-long-password@"))
    message = str(raised.value)
    assert message.startswith("cannot use the PostgreSQL database postgresql+psycopg://postgres:****@")
    assert 'database "no_such_database_here" does not exist' in message and "hunter2" not in message
