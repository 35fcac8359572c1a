"""Engine factory: one place that knows how to connect to SQLite (WAL, real transactions) and PostgreSQL.

SQLite connections get ``journal_mode=WAL``, ``synchronous=NORMAL``, ``foreign_keys=ON`` and a busy timeout.
The pysqlite driver's own transaction handling (it silently commits before DDL and never begins a transaction
for a SELECT) is switched off; SQLAlchemy's ``begin`` emits ``BEGIN`` instead, so every transaction, including
migrations, is really atomic. A connection with the execution option ``sqlite_begin="IMMEDIATE"`` takes the
write lock when it begins, which makes read-then-write sequences safe against another writing process.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_SEC = 10
SQLITE_BEGIN_OPTION = "sqlite_begin"
_SQLITE_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def normalize_url(db_url: str | URL) -> URL:
    """Parse a database URL; bare ``postgresql://`` / ``postgres://`` URLs get the installed psycopg 3 driver."""
    url = make_url(db_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    if database.startswith("file:"):  # URI filename, e.g. file:/path/x.db?mode=rwc
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def json_default(value: object) -> object:
    """``json.dumps`` fallback: Decimals become their exact string; anything else non-JSON is an error."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__} {value!r}")


def _json_serializer(value: object) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"), sort_keys=True)


def make_engine(db_url: str | URL, *, wal_autocheckpoint: bool = True, **engine_options: Any) -> Engine:
    """Create an engine for ``db_url``; for SQLite, create the file's folder and turn WAL mode on.

    ``wal_autocheckpoint=False`` (SQLite): a commit never copies the WAL into the database file itself (SQLite's
    default makes the commit that crosses 1,000 WAL pages do it, with an fsync: milliseconds in that commit's
    path); the caller checkpoints off its hot path instead (``database/checkpoint.py``).
    """
    url = normalize_url(db_url)
    options: dict[str, Any] = {"json_serializer": _json_serializer}
    if url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        options.update(engine_options)
        engine = create_engine(url, **options)
        _configure_sqlite(engine, in_memory=path is None, autocheckpoint=wal_autocheckpoint)
        return engine
    if url.get_backend_name() == "postgresql":
        options["pool_pre_ping"] = True
        # A server that does not answer (wrong host, firewall) fails after this long instead of the OS's minutes.
        options["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SEC}
    options.update(engine_options)
    return create_engine(url, **options)


def _configure_sqlite(engine: Engine, in_memory: bool, autocheckpoint: bool = True) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _connection_record: Any) -> None:
        # Take transaction control away from pysqlite; SQLAlchemy's "begin" below emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                mode = cursor.fetchone()[0]
                if str(mode).lower() != "wal":
                    raise RuntimeError(f"SQLite refused WAL mode for {engine.url}: journal_mode is {mode!r}")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not autocheckpoint:
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = str(connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")).upper()
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(f"{SQLITE_BEGIN_OPTION}={mode!r}; expected one of {_SQLITE_BEGIN_MODES}")
        # On the DBAPI connection itself: SQLAlchemy's execution machinery would add more than the BEGIN costs.
        execute_on_sqlite_driver(connection.connection.driver_connection, f"BEGIN {mode}")


def execute_on_sqlite_driver(driver: sqlite3.Connection, statement: str) -> None:
    """Run a statement without parameters on a pysqlite connection; a driver error is raised as SQLAlchemy would
    raise it (callers tell a locked database by it)."""
    try:
        driver.execute(statement)
    except sqlite3.Error as error:
        raise DBAPIError.instance(statement, None, error, sqlite3.Error) from error
