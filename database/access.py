"""Opening the database for a command, with one clear line (what, where, what to do) for each way that can fail.

``open_for_writing`` is for commands that write (a run, ``migrate``, ``risk clear``): it creates a SQLite file's
folder, waits at most ``LOCK_WAIT_SEC`` for another process's write lock, applies the migrations and proves that
the database takes writes. ``open_existing`` is for commands that only read: it never creates a database, and says
so when there is none or when its schema is not the newest. Both raise :class:`DatabaseUnavailable`, whose message
never holds the password of the URL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from database.engine import SQLITE_BEGIN_OPTION, SQLITE_BUSY_TIMEOUT_MS, make_engine, normalize_url, sqlite_file
from database.errors import DatabaseMissing, DatabaseUnavailable
from database.migrate import current_revision, head_revision, migrate
from database.repository import Repository
from utils.clock import Clock
from utils.secrets import mask_database_url

#: How long a start waits for another process's write lock on a SQLite database before it gives up.
LOCK_WAIT_SEC = 3.0
_ADVICE = "check DB_URL (see docs/runbook.md, Database)"


def shown_url(db_url: str | URL) -> str:
    """The URL as it may be printed: the password replaced by ``****``."""
    return mask_database_url(db_url if isinstance(db_url, str) else db_url.render_as_string(hide_password=False))


def open_for_writing(db_url: str | URL, clock: Clock | None = None) -> Repository:
    """A repository on a migrated database that takes writes; :class:`DatabaseUnavailable` says why not."""
    where = shown_url(db_url)
    url = _parse(db_url)
    engine = _engine(url, create_folder=True)
    try:
        _wait_for_write_lock(engine, where)
        migrate(engine)
        _prove_writable(engine)
        return Repository(engine, clock, owns_engine=True)
    except DatabaseUnavailable:
        engine.dispose()
        raise
    except (SQLAlchemyError, OSError, RuntimeError) as error:
        engine.dispose()
        raise DatabaseUnavailable(explain(error, where)) from None


def open_existing(db_url: str | URL, clock: Clock | None = None) -> Repository:
    """A repository on a database that already exists at the newest schema; nothing is created or migrated."""
    where = shown_url(db_url)
    url = _parse(db_url)
    path = sqlite_file(url) if url.get_backend_name() == "sqlite" else None
    if url.get_backend_name() == "sqlite" and (path is None or not path.is_file()):
        raise DatabaseMissing(
            f"no database at {path if path is not None else where} (DB_URL={where}): the bot has not run with "
            "this DB_URL yet, so there is nothing to show. Check DB_URL, or start a run first."
        )
    engine = _engine(url, create_folder=False)
    try:
        revision = current_revision(engine)
        head = head_revision()
    except (SQLAlchemyError, OSError, RuntimeError) as error:
        engine.dispose()
        raise DatabaseUnavailable(explain(error, where)) from None
    if revision is None:
        engine.dispose()
        raise DatabaseMissing(
            f"the database {where} has no bot tables (it was never migrated): nothing to show. "
            "Run `uv run main.py migrate` or a run first, or check DB_URL."
        )
    if revision != head:
        engine.dispose()
        raise DatabaseUnavailable(
            f"the database {where} is at schema {revision}, this version of the bot needs {head}: "
            "run `uv run main.py migrate` first."
        )
    return Repository(engine, clock, owns_engine=True)


def explain(error: BaseException, where: str) -> str:
    """One line for a failure to open or write the database ``where`` (a URL with its password hidden)."""
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    detail = _first_line(original)
    if isinstance(original, sqlite3.Error):
        name = getattr(original, "sqlite_errorname", "")
        lowered = detail.lower()
        if name.startswith("SQLITE_READONLY") or "readonly" in lowered or "read-only" in lowered:
            return (f"the database {where} is read-only ({detail}): give this user write permission on the file "
                    "and its folder, or point DB_URL at a writable place.")
        if name.startswith("SQLITE_BUSY") or "locked" in lowered:
            return (f"the database {where} is locked by another process (waited {LOCK_WAIT_SEC:g} s): stop the "
                    "other run or program using it (another `main.py`, a sqlite3 shell), or use another DB_URL.")
        if name == "SQLITE_NOTADB" or "not a database" in lowered:
            return f"{where} is not a SQLite database ({detail}): point DB_URL at the bot's database file."
        if name.startswith("SQLITE_CANTOPEN"):
            return (f"the database {where} cannot be opened ({detail}): check that its folder exists and this user "
                    "may write there, or point DB_URL elsewhere.")
        return f"the database {where} failed: {detail}; {_ADVICE}."
    if isinstance(error, DBAPIError) and type(original).__module__.startswith("psycopg"):
        if "read-only" in detail.lower():
            return (f"the database {where} is read-only ({detail}): connect to the primary server, or grant this "
                    "user write access.")
        return (f"cannot use the PostgreSQL database {where}: {detail.split(' Is the server')[0]}. Is the server "
                "running and reachable there, and do the user, password and database in DB_URL exist? Check DB_URL.")
    if isinstance(error, RuntimeError) and "WAL" in detail:
        return (f"the database {where} cannot be switched to WAL mode ({detail}): it is probably read-only or on "
                "a file system without shared memory; point DB_URL at a local, writable folder.")
    return f"the database {where} cannot be used: {type(original).__name__}: {detail}; {_ADVICE}."


# ------------------------------------------------------------------------------------------------ plumbing


def _parse(db_url: str | URL) -> URL:
    try:
        return normalize_url(db_url)
    except ArgumentError as error:
        raise DatabaseUnavailable(f"DB_URL is not a database URL ({_first_line(error)}); {_ADVICE}.") from None


def _engine(url: URL, *, create_folder: bool) -> Engine:
    where = shown_url(url)
    path = sqlite_file(url) if url.get_backend_name() == "sqlite" else None
    if path is not None and create_folder:
        _create_folder(path.parent, where)
    try:
        return make_engine(url)
    except NoSuchModuleError:
        raise DatabaseUnavailable(
            f"unsupported database {url.drivername}:// in {where}: use SQLite (sqlite:///path) or PostgreSQL "
            "(postgresql+psycopg://user:password@host:5432/db)."
        ) from None
    except (ImportError, OSError) as error:
        raise DatabaseUnavailable(explain(error, where)) from None


def _create_folder(folder: Path, where: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseUnavailable(
            f"cannot create the folder {folder} for the database {where} ({type(error).__name__}: "
            f"{error.strerror or error}): create it by hand, or point DB_URL at a folder this user may write to."
        ) from None


def _wait_for_write_lock(engine: Engine, where: str) -> None:
    """SQLite: take the write lock once, waiting at most ``LOCK_WAIT_SEC`` (a run's writes wait longer)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        driver_connection = connection.connection.driver_connection
        assert driver_connection is not None
        driver_connection.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SEC * 1000)}")
        try:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                pass
        finally:
            driver_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _prove_writable(engine: Engine) -> None:
    """Write one row back unchanged and roll back: fails on a read-only file, mount or server."""
    with engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        transaction = connection.begin()
        try:
            connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
        finally:
            transaction.rollback()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and "sqlalche.me" not in line]
    text_ = " ".join(lines) if lines else type(error).__name__
    for prefix in ("(sqlite3.OperationalError) ", "(psycopg.OperationalError) "):
        text_ = text_.removeprefix(prefix)
    return text_
