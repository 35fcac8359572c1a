"""Typed domain objects shared by every layer: candles, mark prices, signals, orders, fills, positions.

Prices and quantities are always ``Decimal``; times are integer milliseconds since the Unix epoch (UTC),
as Binance sends them. Enum values are Binance's own spellings so they cross the wire unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class PositionSide(StrEnum):
    BOTH = "BOTH"
    LONG = "LONG"
    SHORT = "SHORT"


class PositionMode(StrEnum):
    ONEWAY = "ONEWAY"
    HEDGE = "HEDGE"


class MarginType(StrEnum):
    CROSSED = "CROSSED"
    ISOLATED = "ISOLATED"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"
    LIQUIDATION = "LIQUIDATION"

    @property
    def is_conditional(self) -> bool:
        return self not in (OrderType.LIMIT, OrderType.MARKET, OrderType.LIQUIDATION)


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"
    GTD = "GTD"


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)

    @property
    def rank(self) -> int:
        """NEW < PARTIALLY_FILLED < any final status: an order's status only ever moves up."""
        if self is OrderStatus.NEW:
            return 1
        if self is OrderStatus.PARTIALLY_FILLED:
            return 2
        return 3


class ExecutionType(StrEnum):
    NEW = "NEW"
    CANCELED = "CANCELED"
    CALCULATED = "CALCULATED"
    EXPIRED = "EXPIRED"
    TRADE = "TRADE"
    AMENDMENT = "AMENDMENT"


class WorkingType(StrEnum):
    MARK_PRICE = "MARK_PRICE"
    CONTRACT_PRICE = "CONTRACT_PRICE"


class AlgoStatus(StrEnum):
    NEW = "NEW"
    CANCELED = "CANCELED"
    TRIGGERING = "TRIGGERING"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class TradingState(StrEnum):
    """What the risk manager allows for a scope (global, or one strategy)."""

    ACTIVE = "ACTIVE"  # entries and exits
    REDUCING = "REDUCING"  # exits only
    HALTED = "HALTED"  # exits only, until an operator clears it


class IntentState(StrEnum):
    """Where the bot is in placing an order (independent of the exchange's own order status)."""

    PENDING_SEND = "PENDING_SEND"  # decided and saved, not yet sent
    SENT = "SENT"  # request in flight
    UNKNOWN = "UNKNOWN"  # timeout or 5xx: the order may exist; look it up before any retry
    REJECTED = "REJECTED"  # the exchange refused it (see reject_code / reject_message)
    NOT_FOUND = "NOT_FOUND"  # looked up over the whole unknown-outcome window: the exchange never placed it
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


class OrderPurpose(StrEnum):
    """What an order is for (the exchange does not know this; the bot does)."""

    ENTRY = "entry"  # opens (or adds to) a strategy's position
    EXIT = "exit"  # closes it (also the closing half of a reversal)
    STOP_LOSS = "stop_loss"  # exchange-side protective stop (closePosition)
    TAKE_PROFIT = "take_profit"  # exchange-side protective take-profit (closePosition)
    EXTERNAL = "external"  # not placed by this bot (an operator's order, a liquidation)

    @property
    def is_protective(self) -> bool:
        return self in (OrderPurpose.STOP_LOSS, OrderPurpose.TAKE_PROFIT)


class SignalOutcome(StrEnum):
    """What came of a signal: the answer to "why did the bot (not) trade?", stored with the signal."""

    ORDERED = "ORDERED"  # at least one order was sent (client_order_ids says which)
    WAITING = "WAITING"  # a reversal: the exit was sent; the entry waits until the exit has made the position flat
    NO_ACTION = "NO_ACTION"  # the position is already what the signal asks for
    REFUSED_BY_PLANNER = "REFUSED_BY_PLANNER"  # e.g. owned by another strategy, or sized below the minimum
    REFUSED_BY_RISK = "REFUSED_BY_RISK"  # a risk guard (detail: which, and why)
    REFUSED_BY_FILTERS = "REFUSED_BY_FILTERS"  # an exchange filter would refuse it (detail: Binance's code)
    ALREADY_SENT = "ALREADY_SENT"  # its orders are already stored (the same data replayed): nothing sent again
    IGNORED = "IGNORED"  # not configured, or no price known yet


class SizingMode(StrEnum):
    """How a strategy's entry size is chosen."""

    FIXED_NOTIONAL = "fixed_notional"  # value = the position's notional in USDT
    EQUITY_FRACTION = "equity_fraction"  # margin = equity x value (0 < value <= 1); notional = margin x leverage


class SignalSide(StrEnum):
    """What a strategy wants: be long, be short, or be flat (exit)."""

    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed (or in-progress, ``closed=False``) 1-minute kline."""

    symbol: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote_volume: Decimal = ZERO
    interval: str = "1m"
    closed: bool = True


@dataclass(frozen=True, slots=True)
class MarkPrice:
    symbol: str
    event_time: int
    mark_price: Decimal
    index_price: Decimal
    funding_rate: Decimal
    next_funding_time: int
    estimated_settle_price: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Signal:
    strategy: str
    symbol: str
    side: SignalSide
    strength: Decimal
    reason: str
    time: int
    candle_open_time: int = 0


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the executor has decided to place, before it is sent (and before rounding, if unrounded)."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    position_side: PositionSide = PositionSide.BOTH
    reduce_only: bool = False
    close_position: bool = False
    stop_price: Decimal | None = None
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    strategy: str = ""
    signal_time: int = 0
    purpose: OrderPurpose = OrderPurpose.ENTRY  # what the order is for, not how it is sent


@dataclass(slots=True)
class Order:
    """An order as the exchange reports it (mutable: it changes as it fills)."""

    symbol: str
    order_id: int
    client_order_id: str
    side: Side
    order_type: OrderType
    status: OrderStatus
    quantity: Decimal
    price: Decimal
    time_in_force: TimeInForce
    position_side: PositionSide = PositionSide.BOTH
    reduce_only: bool = False
    close_position: bool = False
    stop_price: Decimal = ZERO
    executed_quantity: Decimal = ZERO
    cum_quote: Decimal = ZERO
    avg_price: Decimal = ZERO
    working_type: WorkingType = WorkingType.CONTRACT_PRICE
    create_time: int = 0
    update_time: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    trade_id: int
    order_id: int
    client_order_id: str
    side: Side
    position_side: PositionSide
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    commission: Decimal
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    time: int


@dataclass(slots=True)
class Position:
    symbol: str
    position_side: PositionSide = PositionSide.BOTH
    amount: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO
    break_even_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    mark_price: Decimal = ZERO
    leverage: int = 1
    margin_type: MarginType = MarginType.CROSSED
    isolated_wallet: Decimal = ZERO
    update_time: int = 0

    @property
    def is_flat(self) -> bool:
        return self.amount == 0

    @property
    def notional(self) -> Decimal:
        price = self.mark_price if self.mark_price else self.entry_price
        return abs(self.amount) * price


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal = ZERO
    balance_change: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the account looks like at one moment: balances and positions."""

    time: int
    balances: tuple[Balance, ...] = ()
    positions: tuple[Position, ...] = field(default_factory=tuple)


class TripStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    ABANDONED = "ABANDONED"  # a fresh simulated account no longer holds it (never on a real exchange)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One position of one strategy, from the fill that opened it until it is flat again (a closed "trade").

    ``trip_id`` is the client order id of the order whose fill opened it. Values are sums over the trip's
    fills: the average entry price is ``entry_value / quantity``, the exit's ``exit_value / closed_quantity``.
    """

    trip_id: str
    strategy: str  # "" when no strategy of ours owns it (an external or adopted position)
    symbol: str
    position_side: PositionSide
    direction: Side  # BUY: long, SELL: short
    open_time: int
    status: TripStatus = TripStatus.OPEN
    close_time: int | None = None
    quantity: Decimal = ZERO  # opened (sum of fills in the trip's direction)
    closed_quantity: Decimal = ZERO  # closed (sum of fills against it)
    entry_value: Decimal = ZERO
    exit_value: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO
    fills: int = 0

    @property
    def amount(self) -> Decimal:
        """The signed position this trip still holds."""
        return self.direction.sign * (self.quantity - self.closed_quantity)

    @property
    def entry_price(self) -> Decimal:
        return self.entry_value / self.quantity if self.quantity else ZERO

    @property
    def exit_price(self) -> Decimal:
        return self.exit_value / self.closed_quantity if self.closed_quantity else ZERO

    @property
    def net_pnl(self) -> Decimal:
        return self.realized_pnl - self.commission
