"""The simulated exchange's data types: its configuration, the records it keeps and the views it returns.

``SimConfig`` (how it charges and fills), ``AlgoOrder`` (a conditional order), ``AccountState`` and
``PositionRisk`` (the account and per-position views), and the engine's own bookkeeping: ``WorkingOrder`` (an
order plus what matching needs), ``WorkingAlgo``, ``OrderIndex`` (records by exchange id and by client id) and
``SymbolState`` (one symbol's rules, prices, funding, book and positions). No behaviour beyond small accessors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from simulator import codes
from simulator.account import LeverageBracket, PositionState
from simulator.exchange_info import DEFAULT_LIQUIDATION_FEE_RATE
from utils.domain import (
    ZERO,
    AlgoStatus,
    Fill,
    MarginType,
    Order,
    OrderType,
    PositionSide,
    Side,
    TimeInForce,
    WorkingType,
)
from utils.filters import SymbolFilters

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_TEN_THOUSAND = Decimal(10_000)

# A place and a range to execute at: (reference price, low, high, traded volume) of the candle it happens in.
Quote = tuple[Decimal, Decimal, Decimal, Decimal]



@dataclass(frozen=True)
class SimConfig:
    """How the simulated exchange charges and fills. Every knob is described in docs/simulator.md."""

    maker_fee_rate: Decimal = Decimal("0.0002")
    taker_fee_rate: Decimal = Decimal("0.0005")
    # Every taker execution (market orders, the marketable part of limits, triggered stops) pays this much past
    # the reference price, in basis points (1 bp = 0.01 % = a fraction of 0.0001): the half spread.
    slippage_bps: Decimal = Decimal("1")
    # ... plus a price impact that grows with the square root of the share of the candle's volume taken:
    # impact_bps x sqrt(taken / volume) on the side's taken quantity, averaged over the fill (docs/simulator.md,
    # "Price impact"). 10 bp is about BTCUSDT's square-root-law impact: daily volatility / sqrt(1440).
    impact_bps: Decimal = Decimal("10")
    default_leverage: int = 20
    # Funding interval per symbol in hours; symbols not listed use default_funding_interval_hours.
    funding_interval_hours: Mapping[str, int] = field(default_factory=dict)
    default_funding_interval_hours: int = 8
    default_funding_rate: Decimal = Decimal("0.0001")
    # Volume cap: everything that executes against one candle's liquidity (resting fills and triggered orders on
    # the candle; market orders and marketable limits between candles, against the last candle) takes at most
    # this fraction of its traded volume, together. A MARKET / IOC remainder expires; a GTC remainder rests.
    max_volume_fraction: Decimal = Decimal("0.1")
    # A resting limit fills only when the candle traded strictly through its price (False) or also on a touch.
    fill_on_touch: bool = False
    # Maintenance margin: a flat rate per symbol overrides the brackets' rates.
    maintenance_margin_rate: Mapping[str, Decimal] = field(default_factory=dict)
    # Leverage brackets per symbol (simulator.account.parse_leverage_brackets of GET /fapi/v1/leverageBracket).
    # Symbols not listed use the shipped brackets (simulator/leverage_brackets.json: BTCUSDT, ETHUSDT, LTCUSDT)
    # unless shipped_leverage_brackets is False; others get one tier from exchangeInfo (maintMarginPercent,
    # 100 / requiredMarginPercent).
    leverage_brackets: Mapping[str, Sequence[LeverageBracket]] = field(default_factory=dict)
    shipped_leverage_brackets: bool = True
    # Liquidation clearance fee rate per symbol (exchangeInfo liquidationFee); others use the default.
    liquidation_fee_rate: Mapping[str, Decimal] = field(default_factory=dict)
    default_liquidation_fee_rate: Decimal = DEFAULT_LIQUIDATION_FEE_RATE
    # A cancelled or expired order with no fill can be queried for this long (Binance: 3 days).
    order_retention_ms: int = 3 * DAY_MS
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("maker_fee_rate", "taker_fee_rate", "slippage_bps", "impact_bps", "max_volume_fraction"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or value < 0:
                raise ValueError(f"SimConfig.{name} must be a non-negative Decimal, got {value!r}")
        if self.default_leverage < 1:
            raise ValueError("SimConfig.default_leverage must be at least 1")
        hours = [self.default_funding_interval_hours, *self.funding_interval_hours.values()]
        if any(h <= 0 for h in hours):
            raise ValueError("funding intervals must be positive hours")

    @property
    def slippage_fraction(self) -> Decimal:
        return self.slippage_bps / _TEN_THOUSAND

    @property
    def impact_fraction(self) -> Decimal:
        return self.impact_bps / _TEN_THOUSAND


@dataclass(slots=True)
class AlgoOrder:
    """A conditional order held by the algo service until its trigger price is reached."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: Side
    order_type: OrderType
    status: AlgoStatus
    trigger_price: Decimal
    quantity: Decimal
    price: Decimal
    time_in_force: TimeInForce
    position_side: PositionSide
    reduce_only: bool
    close_position: bool
    working_type: WorkingType
    create_time: int
    update_time: int
    trigger_time: int = 0
    actual_order_id: int = 0          # the order placed in the matching engine when triggered
    actual_order_type: str = ""       # MARKET or LIMIT
    executed_quantity: Decimal = ZERO
    avg_price: Decimal = ZERO
    reject_reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in (AlgoStatus.NEW, AlgoStatus.TRIGGERING, AlgoStatus.TRIGGERED)


@dataclass(frozen=True, slots=True)
class AccountState:
    """The USDT account at one moment. ``equity`` is Binance's margin balance (wallet + unrealized PnL)."""

    wallet_balance: Decimal
    available_balance: Decimal
    total_initial_margin: Decimal
    total_maintenance_margin: Decimal
    unrealized_pnl: Decimal
    equity: Decimal
    deposits: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    funding_total: Decimal
    cross_wallet_balance: Decimal
    total_position_initial_margin: Decimal
    total_open_order_initial_margin: Decimal
    cross_unrealized_pnl: Decimal
    update_time: int
    insurance_cleared: Decimal = ZERO  # what the insurance fund paid to bring a liquidated pool back to zero


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """Everything GET /fapi/v3/positionRisk shows for one position (see simulator.rest_shapes)."""

    symbol: str
    position_side: PositionSide
    amount: Decimal
    entry_price: Decimal
    break_even_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal
    notional: Decimal
    isolated_margin: Decimal
    isolated_wallet: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    bid_notional: Decimal
    ask_notional: Decimal
    leverage: int
    margin_type: MarginType
    max_notional: Decimal
    update_time: int


class WorkingOrder:
    """The engine's record of one order: the domain Order plus what matching needs."""

    __slots__ = ("order", "orig_type", "seq", "margin_direction", "closing", "booked", "taking", "algo")

    def __init__(self, order: Order, orig_type: OrderType, seq: int, margin_direction: int, closing: bool,
                 algo: AlgoOrder | None = None) -> None:
        self.order = order
        self.orig_type = orig_type
        self.seq = seq
        self.margin_direction = margin_direction  # +1 may open/extend a long, -1 a short, 0 only closes
        self.closing = closing                    # reduce-only semantics (reduceOnly, or a hedge-mode close)
        self.booked = False                       # resting in the book (counted in the notional sums)
        self.taking = False                       # marketable when placed: its remainder still takes (taker fee)
        self.algo = algo                          # the conditional order that placed it, if any


class WorkingAlgo:
    """An open conditional order and its place in the arrival sequence (ties on the candle path go to the oldest)."""

    __slots__ = ("algo", "seq")

    def __init__(self, algo: AlgoOrder, seq: int) -> None:
        self.algo = algo
        self.seq = seq


class OrderIndex[T]:
    """Records by exchange id, oldest first, and by client id (a client id maps to the latest record using it)."""

    __slots__ = ("by_id", "by_client")

    def __init__(self) -> None:
        self.by_id: dict[int, T] = {}
        self.by_client: dict[str, T] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def __bool__(self) -> bool:
        return bool(self.by_id)

    def __iter__(self) -> Iterator[T]:
        return iter(self.by_id.values())

    def add(self, record_id: int, client_id: str, record: T) -> None:
        self.by_id[record_id] = record
        self.by_client[client_id] = record

    def discard(self, record_id: int, client_id: str, record: T) -> None:
        """Remove ``record`` (its client id stays mapped if a later record took it over)."""
        del self.by_id[record_id]
        if self.by_client.get(client_id) is record:
            del self.by_client[client_id]

    def find(self, record_id: int | None, client_id: str | None, id_parameter: str, client_parameter: str) -> T | None:
        """By exchange id (which wins when both are given), else by client id; None when not held.

        Neither given: Binance's -1102 naming both request parameters (e.g. orderId / origClientOrderId).
        """
        if record_id is not None:
            return self.by_id.get(record_id)
        if client_id is not None:
            return self.by_client.get(client_id)
        raise codes.one_of(id_parameter, client_parameter)


class SymbolState:
    """Per-symbol state: rules, prices, funding schedule, book, positions."""

    __slots__ = (
        "name", "filters", "brackets", "max_leverage", "leverage", "margin_type", "liquidation_fee_rate",
        "tick", "lot_step", "has_candle", "last_price", "last_low", "last_high", "last_volume", "last_open_time",
        "mark_price", "mark_from_feed", "funding_rate", "next_funding_time", "funding_interval_ms",
        "open", "orders", "algos",
        "positions", "exposed", "bid_notional", "ask_notional", "open_long_notional", "open_short_notional",
        "trades", "bought", "sold",
    )

    def __init__(self, filters: SymbolFilters, brackets: Sequence[LeverageBracket], leverage: int,
                 liquidation_fee_rate: Decimal, funding_rate: Decimal, funding_interval_ms: int) -> None:
        self.name = filters.symbol
        self.filters = filters
        self.brackets = tuple(brackets)
        self.max_leverage = max(tier.initial_leverage for tier in self.brackets)
        self.leverage = min(leverage, self.max_leverage)
        self.margin_type = MarginType.CROSSED
        self.liquidation_fee_rate = liquidation_fee_rate
        self.tick = filters.tick_size
        self.lot_step = filters.lot.step_size
        self.has_candle = False
        self.last_price = ZERO
        self.last_low = ZERO
        self.last_high = ZERO
        self.last_volume = ZERO
        self.last_open_time = -1
        self.mark_price = ZERO
        self.mark_from_feed = False
        self.funding_rate = funding_rate
        self.next_funding_time = 0
        self.funding_interval_ms = funding_interval_ms
        self.open: OrderIndex[WorkingOrder] = OrderIndex()    # open orders
        self.orders: OrderIndex[WorkingOrder] = OrderIndex()  # every order, open or not (GET /order)
        self.algos: dict[int, WorkingAlgo] = {}                # open conditional orders, by algoId
        self.positions: dict[PositionSide, PositionState] = {}
        self.exposed = False
        self.bid_notional = ZERO        # all open buy orders (Binance "b")
        self.ask_notional = ZERO        # all open sell orders (Binance "a")
        self.open_long_notional = ZERO  # open orders that may open or extend a long
        self.open_short_notional = ZERO
        self.trades: list[Fill] = []
        # Quantity buys / sells already took from the current candle's liquidity (the volume cap's share, per side).
        self.bought = ZERO
        self.sold = ZERO


def order_copy(order: Order) -> Order:
    """A copy the caller may keep: the engine's own Order keeps changing."""
    return Order(order.symbol, order.order_id, order.client_order_id, order.side, order.order_type, order.status,
                 order.quantity, order.price, order.time_in_force, order.position_side, order.reduce_only,
                 order.close_position, order.stop_price, order.executed_quantity, order.cum_quote,
                 order.avg_price, order.working_type, order.create_time, order.update_time)


def algo_copy(algo: AlgoOrder) -> AlgoOrder:
    """A copy the caller may keep (see ``order_copy``)."""
    return AlgoOrder(algo.algo_id, algo.client_algo_id, algo.symbol, algo.side, algo.order_type, algo.status,
                     algo.trigger_price, algo.quantity, algo.price, algo.time_in_force, algo.position_side,
                     algo.reduce_only, algo.close_position, algo.working_type, algo.create_time, algo.update_time,
                     algo.trigger_time, algo.actual_order_id, algo.actual_order_type, algo.executed_quantity,
                     algo.avg_price, algo.reject_reason)
