"""Helpers shared by the database tests: the simulated start time and a dump of every table's rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from database.models import Base

START_MS = 1_700_000_000_000


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: equal dumps mean nothing at all changed."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(row) for row in rows]
    return tables
