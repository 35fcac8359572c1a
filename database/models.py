"""SQLAlchemy table models for the bot's persistent state, plus the small record types the repository returns.

Conventions: money and quantities are :class:`~database.types.ExactDecimal` (exact on SQLite and PostgreSQL);
times are BigInteger milliseconds since the Unix epoch; enums are stored as their Binance spelling in a
VARCHAR (no database enum types, so adding a value never needs a migration). The initial Alembic migration
(``database/migrations/versions/0001_initial.py``) must describe exactly these tables; a test checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from database.types import ExactDecimal
from utils.domain import (
    ZERO,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    TimeInForce,
    TradingState,
    WorkingType,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
SurrogateKey = BigInteger().with_variant(Integer(), "sqlite")

SYMBOL = String(32)
ENUM = String(32)
CLIENT_ORDER_ID = String(64)
NAME = String(64)
ASSET = String(16)


class IntentState(StrEnum):
    """Where the bot is in placing an order (independent of the exchange's own order status)."""

    PENDING_SEND = "PENDING_SEND"  # decided and saved, not yet sent
    SENT = "SENT"  # request in flight
    UNKNOWN = "UNKNOWN"  # timeout or 5xx: the order may exist; look it up before any retry
    REJECTED = "REJECTED"  # the exchange refused it (see reject_code / reject_message)
    NOT_FOUND = "NOT_FOUND"  # looked up after UNKNOWN: the exchange has no such order, it was never placed
    ACKNOWLEDGED = "ACKNOWLEDGED"  # the exchange knows the order (it has an order_id)

    @property
    def rank(self) -> int:
        """Progress order: a state only ever moves to a higher rank (the exchange's word ranks highest)."""
        return _INTENT_RANK[self]

    @property
    def is_unresolved(self) -> bool:
        """True while the order may still come to exist on the exchange without us hearing about it yet."""
        return self in (IntentState.PENDING_SEND, IntentState.SENT, IntentState.UNKNOWN)


_INTENT_RANK = {
    IntentState.PENDING_SEND: 0,
    IntentState.SENT: 1,
    IntentState.UNKNOWN: 2,
    IntentState.REJECTED: 3,
    IntentState.NOT_FOUND: 3,
    IntentState.ACKNOWLEDGED: 4,
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OrderRow(Base):
    """One order the bot decided to place (an intent) and, once known, the exchange's view of it."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("client_order_id"),
        Index(None, "symbol", "order_id"),
        Index(None, "status"),
        Index(None, "intent_state"),
    )

    id: Mapped[int] = mapped_column(SurrogateKey, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(CLIENT_ORDER_ID)
    symbol: Mapped[str] = mapped_column(SYMBOL)
    side: Mapped[str] = mapped_column(ENUM)
    order_type: Mapped[str] = mapped_column(ENUM)
    status: Mapped[str | None] = mapped_column(ENUM)  # the exchange's status; NULL until it reports one
    position_side: Mapped[str] = mapped_column(ENUM)
    time_in_force: Mapped[str | None] = mapped_column(ENUM)
    working_type: Mapped[str] = mapped_column(ENUM)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    stop_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    executed_quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    cum_quote: Mapped[Decimal] = mapped_column(ExactDecimal())
    avg_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    close_position: Mapped[bool] = mapped_column(Boolean)
    is_algo: Mapped[bool] = mapped_column(Boolean)
    order_id: Mapped[int | None] = mapped_column(BigInteger)  # the exchange's id; NULL until acknowledged
    # For a conditional (algo) order, order_id is the algoId; this is the orderId of the order its trigger placed.
    actual_order_id: Mapped[int | None] = mapped_column(BigInteger)
    strategy: Mapped[str] = mapped_column(NAME)
    purpose: Mapped[str] = mapped_column(NAME)  # entry | exit | stop_loss | take_profit ("" if not ours)
    signal_time: Mapped[int] = mapped_column(BigInteger)
    intent_state: Mapped[str] = mapped_column(ENUM)
    reject_code: Mapped[int | None] = mapped_column(Integer)
    reject_message: Mapped[str | None] = mapped_column(Text)
    intent_time: Mapped[int] = mapped_column(BigInteger)  # when the bot saved the intent (its clock)
    intent_state_time: Mapped[int] = mapped_column(BigInteger)  # when intent_state last changed (its clock)
    create_time: Mapped[int] = mapped_column(BigInteger)  # the exchange's creation time; 0 until reported
    update_time: Mapped[int] = mapped_column(BigInteger)  # the exchange's last update time; 0 until reported


class FillRow(Base):
    """One trade (execution) of one of our orders, exactly as the exchange reported it."""

    __tablename__ = "fills"
    __table_args__ = (
        Index(None, "client_order_id"),
        Index(None, "time"),
    )

    symbol: Mapped[str] = mapped_column(SYMBOL, primary_key=True)
    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    order_id: Mapped[int] = mapped_column(BigInteger)
    client_order_id: Mapped[str] = mapped_column(CLIENT_ORDER_ID)
    side: Mapped[str] = mapped_column(ENUM)
    position_side: Mapped[str] = mapped_column(ENUM)
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    quote_quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    commission: Mapped[Decimal] = mapped_column(ExactDecimal())
    commission_asset: Mapped[str] = mapped_column(ASSET)
    realized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal())
    maker: Mapped[bool] = mapped_column(Boolean)
    time: Mapped[int] = mapped_column(BigInteger)


class PositionRow(Base):
    """The latest known state of one position (one row per symbol and position side)."""

    __tablename__ = "positions"

    symbol: Mapped[str] = mapped_column(SYMBOL, primary_key=True)
    position_side: Mapped[str] = mapped_column(ENUM, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())  # signed: > 0 long, < 0 short
    entry_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    break_even_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    realized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal())
    unrealized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal())
    mark_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    isolated_wallet: Mapped[Decimal] = mapped_column(ExactDecimal())
    leverage: Mapped[int] = mapped_column(Integer)
    margin_type: Mapped[str] = mapped_column(ENUM)
    update_time: Mapped[int] = mapped_column(BigInteger)


class SignalRow(Base):
    """One signal a strategy emitted; a replayed signal (same strategy, symbol, time, side) is stored once."""

    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("strategy", "symbol", "time", "side"),
        Index(None, "symbol", "time"),
    )

    id: Mapped[int] = mapped_column(SurrogateKey, primary_key=True, autoincrement=True)
    strategy: Mapped[str] = mapped_column(NAME)
    symbol: Mapped[str] = mapped_column(SYMBOL)
    side: Mapped[str] = mapped_column(ENUM)
    strength: Mapped[Decimal] = mapped_column(ExactDecimal())
    reason: Mapped[str] = mapped_column(Text)
    time: Mapped[int] = mapped_column(BigInteger)
    candle_open_time: Mapped[int] = mapped_column(BigInteger)


class CandleRow(Base):
    """One closed 1-minute kline."""

    __tablename__ = "candles_1m"

    symbol: Mapped[str] = mapped_column(SYMBOL, primary_key=True)
    open_time: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    close_time: Mapped[int] = mapped_column(BigInteger)
    open: Mapped[Decimal] = mapped_column(ExactDecimal())
    high: Mapped[Decimal] = mapped_column(ExactDecimal())
    low: Mapped[Decimal] = mapped_column(ExactDecimal())
    close: Mapped[Decimal] = mapped_column(ExactDecimal())
    volume: Mapped[Decimal] = mapped_column(ExactDecimal())
    quote_volume: Mapped[Decimal] = mapped_column(ExactDecimal())
    trades: Mapped[int] = mapped_column(BigInteger)
    taker_buy_volume: Mapped[Decimal] = mapped_column(ExactDecimal())
    taker_buy_quote_volume: Mapped[Decimal] = mapped_column(ExactDecimal())


class RiskStateRow(Base):
    """The risk manager's state for one scope: ``"global"`` or ``"strategy:<name>"``."""

    __tablename__ = "risk_state"

    scope: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(ENUM)
    reason: Mapped[str] = mapped_column(Text)
    consecutive_losses: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))


class AccountSnapshotRow(Base):
    """The account's balance for one asset at one moment."""

    __tablename__ = "account_snapshots"

    asset: Mapped[str] = mapped_column(ASSET, primary_key=True)
    time: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    wallet_balance: Mapped[Decimal] = mapped_column(ExactDecimal())
    available_balance: Mapped[Decimal] = mapped_column(ExactDecimal())
    equity: Mapped[Decimal] = mapped_column(ExactDecimal())
    unrealized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal())


class FundingPaymentRow(Base):
    """Funding paid (negative) or received (positive) for one symbol at one funding time."""

    __tablename__ = "funding_payments"

    symbol: Mapped[str] = mapped_column(SYMBOL, primary_key=True)
    time: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    asset: Mapped[str] = mapped_column(ASSET)


# --- records the repository returns where the domain has no type of its own -------------------------------


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order: the intent, the bot's progress in placing it, and the exchange's latest report."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    status: OrderStatus | None  # None until the exchange reports the order
    position_side: PositionSide
    time_in_force: TimeInForce | None
    working_type: WorkingType
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    executed_quantity: Decimal
    cum_quote: Decimal
    avg_price: Decimal
    reduce_only: bool
    close_position: bool
    is_algo: bool
    order_id: int | None  # None until acknowledged (the algoId for a conditional order)
    actual_order_id: int | None  # a triggered conditional order: the orderId of the order it placed
    strategy: str
    purpose: str
    signal_time: int
    intent_state: IntentState
    reject_code: int | None
    reject_message: str | None
    intent_time: int
    intent_state_time: int
    create_time: int
    update_time: int

    @property
    def is_open(self) -> bool:
        """Working on the exchange, or possibly so (sent but not yet resolved)."""
        if self.status is not None:
            return self.status.is_open
        return self.intent_state.is_unresolved

    def to_intent(self) -> OrderIntent:
        return OrderIntent(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            quantity=self.quantity,
            price=self.price,
            time_in_force=self.time_in_force,
            position_side=self.position_side,
            reduce_only=self.reduce_only,
            close_position=self.close_position,
            stop_price=self.stop_price,
            working_type=self.working_type,
            strategy=self.strategy,
            signal_time=self.signal_time,
            purpose=self.purpose or "entry",
        )

    def to_order(self) -> Order:
        """The exchange's view as a domain :class:`Order`; only for orders the exchange has reported."""
        if self.order_id is None or self.status is None:
            raise ValueError(
                f"order {self.client_order_id} ({self.symbol}) has no exchange report yet "
                f"(intent_state={self.intent_state}, order_id={self.order_id}, status={self.status})"
            )
        return Order(
            symbol=self.symbol,
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            side=self.side,
            order_type=self.order_type,
            status=self.status,
            quantity=self.quantity,
            price=self.price if self.price is not None else ZERO,
            time_in_force=self.time_in_force if self.time_in_force is not None else TimeInForce.GTC,
            position_side=self.position_side,
            reduce_only=self.reduce_only,
            close_position=self.close_position,
            stop_price=self.stop_price if self.stop_price is not None else ZERO,
            executed_quantity=self.executed_quantity,
            cum_quote=self.cum_quote,
            avg_price=self.avg_price,
            working_type=self.working_type,
            create_time=self.create_time,
            update_time=self.update_time,
        )


@dataclass(frozen=True, slots=True)
class RiskStateRecord:
    scope: str
    state: TradingState
    reason: str
    consecutive_losses: int
    updated_at: int
    details: Any | None


@dataclass(frozen=True, slots=True)
class AccountSnapshotRecord:
    time: int
    asset: str
    wallet_balance: Decimal
    available_balance: Decimal
    equity: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class FundingPaymentRecord:
    symbol: str
    time: int
    amount: Decimal
    asset: str
