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


@pytest.fixture(params=["pooled", "held"])
def repo(request, db_url: str, clock: SimulatedClock) -> Iterator[Repository]:
    """A Repository on a freshly migrated database (SQLite file or new PostgreSQL database), each test both with a
    connection from the pool per call and with the one connection the live shell holds (``hold_connection``)."""
    repository = Repository.open(db_url, clock, hold_connection=request.param == "held")
    try:
        yield repository
    finally:
        repository.close()
