"""SQLite WAL checkpoints off the writer's path, for a process that turned SQLite's automatic ones off.

With ``journal_mode=WAL`` a commit appends to the ``-wal`` file; a checkpoint copies those pages into the database
file (with an fsync) so the WAL can start over. By default SQLite makes the commit that crosses 1,000 WAL pages
run the checkpoint itself, which puts milliseconds into that one commit: the live shell's journal commits are on
the decision path (persist before send), so it opens its engine with ``wal_autocheckpoint=False`` and runs this
checkpointer, a thread with a connection of its own. A ``PASSIVE`` checkpoint takes no write lock: commits go on
while it copies, and the next commit after a complete one starts the WAL over.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from database.engine import SQLITE_BUSY_TIMEOUT_MS

log = logging.getLogger("database.checkpoint")

#: Seconds between checkpoints: the WAL stays a few hundred kilobytes at the live shell's write rate.
CHECKPOINT_EVERY_SEC = 1.0


class WalCheckpointer:
    """A daemon thread that checkpoints a SQLite database's WAL every ``every_sec`` seconds until stopped."""

    def __init__(self, path: Path, *, every_sec: float = CHECKPOINT_EVERY_SEC) -> None:
        self.path = path
        self.every_sec = every_sec
        self.checkpoints = 0
        self.pages_copied = 0
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread after a last checkpoint (waits for it)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def checkpoint_once(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, pages in the WAL, pages copied), as SQLite reports them."""
        busy, log_pages, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        self.pages_copied += max(0, int(copied))
        return int(busy), int(log_pages), int(copied)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                stopping = self._stop.wait(self.every_sec)
                try:
                    if connection is None:
                        connection = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                     isolation_level=None, check_same_thread=True)
                    self.checkpoint_once(connection)
                    self.last_error = None
                except sqlite3.Error as error:  # a locked or vanished file: logged, tried again next time
                    self.failures += 1
                    self.last_error = f"{type(error).__name__}: {error}"
                    log.warning("WAL checkpoint failed", extra={"error": self.last_error})
                    if connection is not None:
                        connection.close()
                        connection = None
                if stopping:
                    return
        finally:
            if connection is not None:
                connection.close()
