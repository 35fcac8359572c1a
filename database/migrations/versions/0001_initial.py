"""Initial schema: orders, fills, positions, signals, candles_1m, risk_state, account_snapshots, funding_payments.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29

Written by hand to match ``database/models.py`` exactly (``tests/database/test_migrations.py`` compares them).
Decimal columns are ``NUMERIC(36, 18)`` on PostgreSQL and canonical text on SQLite, which is what
``database.types.ExactDecimal`` compiles to; application types are deliberately not imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _decimal() -> sa.types.TypeEngine:
    return sa.Numeric(36, 18).with_variant(sa.String(40), "sqlite")


def _surrogate_key() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _symbol() -> sa.String:
    return sa.String(32)


def _enum() -> sa.String:
    return sa.String(32)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", _surrogate_key(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("symbol", _symbol(), nullable=False),
        sa.Column("side", _enum(), nullable=False),
        sa.Column("order_type", _enum(), nullable=False),
        sa.Column("status", _enum(), nullable=True),
        sa.Column("position_side", _enum(), nullable=False),
        sa.Column("time_in_force", _enum(), nullable=True),
        sa.Column("working_type", _enum(), nullable=False),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("price", _decimal(), nullable=True),
        sa.Column("stop_price", _decimal(), nullable=True),
        sa.Column("executed_quantity", _decimal(), nullable=False),
        sa.Column("cum_quote", _decimal(), nullable=False),
        sa.Column("avg_price", _decimal(), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("close_position", sa.Boolean(), nullable=False),
        sa.Column("is_algo", sa.Boolean(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("actual_order_id", sa.BigInteger(), nullable=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("signal_time", sa.BigInteger(), nullable=False),
        sa.Column("intent_state", _enum(), nullable=False),
        sa.Column("reject_code", sa.Integer(), nullable=True),
        sa.Column("reject_message", sa.Text(), nullable=True),
        sa.Column("intent_time", sa.BigInteger(), nullable=False),
        sa.Column("intent_state_time", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("update_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_symbol_order_id", "orders", ["symbol", "order_id"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_intent_state", "orders", ["intent_state"])

    op.create_table(
        "fills",
        sa.Column("symbol", _symbol(), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("side", _enum(), nullable=False),
        sa.Column("position_side", _enum(), nullable=False),
        sa.Column("price", _decimal(), nullable=False),
        sa.Column("quantity", _decimal(), nullable=False),
        sa.Column("quote_quantity", _decimal(), nullable=False),
        sa.Column("commission", _decimal(), nullable=False),
        sa.Column("commission_asset", sa.String(16), nullable=False),
        sa.Column("realized_pnl", _decimal(), nullable=False),
        sa.Column("maker", sa.Boolean(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "trade_id", name="pk_fills"),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])
    op.create_index("ix_fills_time", "fills", ["time"])

    op.create_table(
        "positions",
        sa.Column("symbol", _symbol(), nullable=False),
        sa.Column("position_side", _enum(), nullable=False),
        sa.Column("amount", _decimal(), nullable=False),
        sa.Column("entry_price", _decimal(), nullable=False),
        sa.Column("break_even_price", _decimal(), nullable=False),
        sa.Column("realized_pnl", _decimal(), nullable=False),
        sa.Column("unrealized_pnl", _decimal(), nullable=False),
        sa.Column("mark_price", _decimal(), nullable=False),
        sa.Column("isolated_wallet", _decimal(), nullable=False),
        sa.Column("leverage", sa.Integer(), nullable=False),
        sa.Column("margin_type", _enum(), nullable=False),
        sa.Column("update_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "position_side", name="pk_positions"),
    )

    op.create_table(
        "signals",
        sa.Column("id", _surrogate_key(), autoincrement=True, nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("symbol", _symbol(), nullable=False),
        sa.Column("side", _enum(), nullable=False),
        sa.Column("strength", _decimal(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("candle_open_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
        sa.UniqueConstraint("strategy", "symbol", "time", "side", name="uq_signals_strategy_symbol_time_side"),
    )
    op.create_index("ix_signals_symbol_time", "signals", ["symbol", "time"])

    op.create_table(
        "candles_1m",
        sa.Column("symbol", _symbol(), nullable=False),
        sa.Column("open_time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("close_time", sa.BigInteger(), nullable=False),
        sa.Column("open", _decimal(), nullable=False),
        sa.Column("high", _decimal(), nullable=False),
        sa.Column("low", _decimal(), nullable=False),
        sa.Column("close", _decimal(), nullable=False),
        sa.Column("volume", _decimal(), nullable=False),
        sa.Column("quote_volume", _decimal(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_volume", _decimal(), nullable=False),
        sa.Column("taker_buy_quote_volume", _decimal(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "open_time", name="pk_candles_1m"),
    )

    op.create_table(
        "risk_state",
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("state", _enum(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("consecutive_losses", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("details", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", name="pk_risk_state"),
    )

    op.create_table(
        "account_snapshots",
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("wallet_balance", _decimal(), nullable=False),
        sa.Column("available_balance", _decimal(), nullable=False),
        sa.Column("equity", _decimal(), nullable=False),
        sa.Column("unrealized_pnl", _decimal(), nullable=False),
        sa.PrimaryKeyConstraint("asset", "time", name="pk_account_snapshots"),
    )

    op.create_table(
        "funding_payments",
        sa.Column("symbol", _symbol(), nullable=False),
        sa.Column("time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("amount", _decimal(), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "time", name="pk_funding_payments"),
    )


def downgrade() -> None:
    op.drop_table("funding_payments")
    op.drop_table("account_snapshots")
    op.drop_table("risk_state")
    op.drop_table("candles_1m")
    op.drop_index("ix_signals_symbol_time", table_name="signals")
    op.drop_table("signals")
    op.drop_table("positions")
    op.drop_index("ix_fills_time", table_name="fills")
    op.drop_index("ix_fills_client_order_id", table_name="fills")
    op.drop_table("fills")
    op.drop_index("ix_orders_intent_state", table_name="orders")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_index("ix_orders_symbol_order_id", table_name="orders")
    op.drop_table("orders")
