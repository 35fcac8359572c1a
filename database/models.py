"""SQLAlchemy table models for the bot's persistent state, plus the small record types the repository returns.

Conventions: money and quantities are :class:`~database.types.ExactDecimal` (exact on SQLite and PostgreSQL);
times are BigInteger milliseconds since the Unix epoch; enums are stored as their Binance spelling in a
VARCHAR (no database enum types, so adding a value never needs a migration). The initial Alembic migration
(``database/migrations/versions/0001_initial.py``) must describe exactly these tables; a test checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
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
    IntentState,
    Order,
    OrderIntent,
    OrderPurpose,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    Signal,
    SignalOutcome,
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
    purpose: Mapped[str] = mapped_column(NAME)  # an OrderPurpose value ("" in rows from before it existed)
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
    # What came of it (a SignalOutcome value; NULL in rows from before outcomes were recorded), why, and the client
    # order ids it led to (comma-separated).
    outcome: Mapped[str | None] = mapped_column(ENUM)
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    client_order_ids: Mapped[str | None] = mapped_column(Text)


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


class RoundTripRow(Base):
    """One round trip: a strategy's position from the fill that opened it until it was flat again."""

    __tablename__ = "round_trips"
    __table_args__ = (
        Index(None, "status"),
        Index(None, "strategy", "close_time"),
        Index(None, "symbol", "close_time"),
    )

    trip_id: Mapped[str] = mapped_column(CLIENT_ORDER_ID, primary_key=True)  # the opening order's client id
    strategy: Mapped[str] = mapped_column(NAME)  # "" when no strategy of ours owns it
    symbol: Mapped[str] = mapped_column(SYMBOL)
    position_side: Mapped[str] = mapped_column(ENUM)
    direction: Mapped[str] = mapped_column(ENUM)  # BUY (long) or SELL (short)
    status: Mapped[str] = mapped_column(ENUM)  # OPEN, CLOSED, ABANDONED
    open_time: Mapped[int] = mapped_column(BigInteger)
    close_time: Mapped[int | None] = mapped_column(BigInteger)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    closed_quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    entry_value: Mapped[Decimal] = mapped_column(ExactDecimal())
    exit_value: Mapped[Decimal] = mapped_column(ExactDecimal())
    realized_pnl: Mapped[Decimal] = mapped_column(ExactDecimal())
    commission: Mapped[Decimal] = mapped_column(ExactDecimal())
    fills: Mapped[int] = mapped_column(Integer)


class SimAccountRow(Base):
    """The simulated exchange's whole state (sim mode), so a second run continues the same account."""

    __tablename__ = "sim_accounts"

    name: Mapped[str] = mapped_column(NAME, primary_key=True)  # "default"
    saved_at: Mapped[int] = mapped_column(BigInteger)  # market time of the snapshot
    document: Mapped[str] = mapped_column(Text)  # SimExchange.snapshot() as JSON (Decimals as exact strings)


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
    purpose: OrderPurpose  # EXTERNAL for orders this bot did not place
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
        """The order as the bot decided it (the fields an :class:`OrderIntent` has, taken from this record)."""
        values = {name: getattr(self, name) for name in _INTENT_FIELDS}
        if values["purpose"] is OrderPurpose.EXTERNAL:
            values["purpose"] = OrderPurpose.ENTRY if self.strategy else OrderPurpose.EXTERNAL
        return OrderIntent(**values)

    def to_order(self) -> Order:
        """The exchange's view as a domain :class:`Order`; only for orders the exchange has reported."""
        if self.order_id is None or self.status is None:
            raise ValueError(
                f"order {self.client_order_id} ({self.symbol}) has no exchange report yet "
                f"(intent_state={self.intent_state}, order_id={self.order_id}, status={self.status})"
            )
        values = {name: getattr(self, name) for name in _ORDER_FIELDS}
        for name, default in (("price", ZERO), ("stop_price", ZERO), ("time_in_force", TimeInForce.GTC)):
            if values[name] is None:
                values[name] = default
        return Order(**values)


_INTENT_FIELDS = tuple(f.name for f in fields(OrderIntent))
_ORDER_FIELDS = tuple(f.name for f in fields(Order))
_missing = (set(_INTENT_FIELDS) | set(_ORDER_FIELDS)) - {f.name for f in fields(OrderRecord)}
if _missing:
    raise RuntimeError(f"OrderRecord lacks field(s) {sorted(_missing)} of OrderIntent / Order")


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A stored signal and what came of it."""

    signal: Signal
    outcome: SignalOutcome | None  # None for signals stored before outcomes were recorded
    outcome_detail: str
    client_order_ids: tuple[str, ...]


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
