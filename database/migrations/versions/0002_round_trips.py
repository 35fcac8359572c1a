"""Round trips: one row per position a strategy held, from the fill that opened it until it was flat again.

Revision ID: 0002_round_trips
Revises: 0001_initial
Create Date: 2026-12-01

Written by hand to match ``database/models.py`` (``tests/database/test_migrations.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_round_trips"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _decimal() -> sa.types.TypeEngine:
    return sa.Numeric(36, 18).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "round_trips",
        sa.Column("trip_id", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("position_side", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("open_time", sa.BigInteger(), nullable=False),
        sa.Column("close_time", sa.BigInteger(), nullable=True),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("closed_quantity", _decimal(), nullable=False),
        sa.Column("entry_value", _decimal(), nullable=False),
        sa.Column("exit_value", _decimal(), nullable=False),
        sa.Column("realized_pnl", _decimal(), nullable=False),
        sa.Column("commission", _decimal(), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("trip_id", name="pk_round_trips"),
    )
    op.create_index("ix_round_trips_status", "round_trips", ["status"])
    op.create_index("ix_round_trips_strategy_close_time", "round_trips", ["strategy", "close_time"])
    op.create_index("ix_round_trips_symbol_close_time", "round_trips", ["symbol", "close_time"])


def downgrade() -> None:
    op.drop_index("ix_round_trips_symbol_close_time", table_name="round_trips")
    op.drop_index("ix_round_trips_strategy_close_time", table_name="round_trips")
    op.drop_index("ix_round_trips_status", table_name="round_trips")
    op.drop_table("round_trips")
