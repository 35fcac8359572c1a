"""The live shell's database plumbing: one held connection (no stale reads, no transaction left open, replaced
after an error) and SQLite WAL checkpoints in a thread of their own instead of in a commit."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from database.checkpoint import WalCheckpointer
from database.repository import Repository
from tests.database.helpers import START_MS
from utils.domain import Signal, SignalSide, TradingState


def _signal(minute: int) -> Signal:
    return Signal("alpha", "BTCUSDT", SignalSide.LONG, Decimal(1), "test", START_MS + minute * 60_000)


def test_a_held_connection_sees_other_writers_and_leaves_no_transaction_open(db_url: str) -> None:
    held = Repository.open(db_url, hold_connection=True)
    other = Repository.open(db_url)
    try:
        assert held.get_risk_state("global") is None
        other.set_risk_state("global", TradingState.HALTED, "operator")  # another process, say `main.py risk`
        record = held.get_risk_state("global")  # read at once: no snapshot older than the other's commit
        assert record is not None and record.state is TradingState.HALTED
        held.record_signal(_signal(1))
        # Between calls the held connection is idle: another writer gets the write lock at once.
        other.set_risk_state("global", TradingState.ACTIVE, "cleared")
        assert [s.time for s in other.signals()] == [START_MS + 60_000]
    finally:
        held.close()
        other.close()


def test_after_an_error_nothing_of_the_transaction_is_kept_and_the_next_call_works(db_url: str) -> None:
    repository = Repository.open(db_url, hold_connection=True)
    try:
        with pytest.raises(RuntimeError, match="half way"), repository.transaction():
            repository.record_signal(_signal(1))
            raise RuntimeError("half way")
        with pytest.raises(StatementError, match="never float"):
            repository.record_funding("BTCUSDT", 1, 0.5)  # type: ignore[arg-type]
        assert repository.signals() == []
        assert repository.record_signal(_signal(2)) is True
        assert [s.time for s in repository.signals()] == [START_MS + 120_000]
    finally:
        repository.close()


def _autocheckpoint(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    finally:
        connection.close()


def test_background_checkpoints_keep_the_wal_short_and_commits_never_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "trader.db"
    repository = Repository.open(f"sqlite:///{path}", hold_connection=True, background_checkpoint=True)
    try:
        with repository._read() as connection:  # noqa: SLF001 - the engine's setting, as its connections have it
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        assert _autocheckpoint(path) == 1000  # a connection of someone else keeps SQLite's default
        checkpointer = repository.checkpointer
        assert checkpointer is not None
        for minute in range(3_000):  # about 3,000 WAL pages: SQLite's default would checkpoint in a commit
            repository.record_signal(_signal(minute))
        deadline = time.monotonic() + 10
        while checkpointer.pages_copied == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpointer.pages_copied > 0 and checkpointer.failures == 0
        assert len(repository.signals()) == 3_000
    finally:
        repository.close()
    assert repository.checkpointer is None  # stopped with the repository


def test_the_checkpointer_survives_a_database_it_cannot_open_and_stops_promptly(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(tmp_path / "missing" / "trader.db", every_sec=0.02)
    checkpointer.start()
    deadline = time.monotonic() + 5
    while checkpointer.failures < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    checkpointer.stop()
    assert checkpointer.failures >= 2 and "unable to open" in (checkpointer.last_error or "")
    assert time.monotonic() - started < 1


def test_a_postgresql_connection_the_server_dropped_costs_one_failed_call(postgres_url: str) -> None:
    """The server ends the held connection (a restart, an idle timeout): the next call fails, the one after opens
    a new connection and works. The journal's retry (0.5 s) is that second call."""
    import sqlalchemy as sa

    repository = Repository.open(postgres_url, hold_connection=True)
    admin = sa.create_engine(postgres_url)
    try:
        repository.record_signal(_signal(1))
        with repository._read() as connection:  # noqa: SLF001 - the held connection's server process
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as other:
            assert other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar() is True
        with pytest.raises(sa.exc.DBAPIError):
            repository.record_signal(_signal(2))
        assert repository.record_signal(_signal(2)) is True
        assert [s.time for s in repository.signals()] == [START_MS + 60_000, START_MS + 120_000]
    finally:
        admin.dispose()
        repository.close()
