"""Signal outcomes (what came of each signal) and the simulated exchange's saved account (sim mode).

Revision ID: 0003_signal_outcomes
Revises: 0002_round_trips
Create Date: 2026-12-01

Written by hand to match ``database/models.py`` (``tests/database/test_migrations.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_signal_outcomes"
down_revision: str | Sequence[str] | None = "0002_round_trips"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))
        batch.add_column(sa.Column("outcome_detail", sa.Text(), nullable=True))
        batch.add_column(sa.Column("client_order_ids", sa.Text(), nullable=True))
    op.create_table(
        "sim_accounts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("saved_at", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sim_accounts"),
    )


def downgrade() -> None:
    op.drop_table("sim_accounts")
    with op.batch_alter_table("signals") as batch:
        batch.drop_column("client_order_ids")
        batch.drop_column("outcome_detail")
        batch.drop_column("outcome")
