"""Fixtures for the database tests: a migrated Repository on each backend and a settable clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from database.repository import Repository
from tests.database.helpers import START_MS
from utils.clock import SimulatedClock


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START_MS)


@pytest.fixture
def repo(db_url: str, clock: SimulatedClock) -> Iterator[Repository]:
    """A Repository on a freshly migrated database (SQLite file or new PostgreSQL database)."""
    repository = Repository.open(db_url, clock)
    try:
        yield repository
    finally:
        repository.close()
