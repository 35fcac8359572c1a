"""The simulated Binance USD-M Futures exchange: order matching against candles, the USDT account, and its events.

One in-process object plays the exchange for sim mode and backtests (and sits behind the wire-compatible server).
It takes closed 1m candles and mark prices in, accepts and rejects orders with Binance's codes, fills them by
the model in ``simulator.matching``, keeps positions, margin and funding by ``simulator.account``, and pushes
every change to listeners as a user-data-stream event (``simulator.events``). It never reads the wall clock:
time comes from the injected ``Clock``. The rules, and where they differ from Binance, are in docs/simulator.md.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator import codes, events, rest_shapes
from simulator.account import (
    UNLIMITED_NOTIONAL,
    ZERO,
    LeverageBracket,
    LiquidationLevel,
    PositionState,
    bracket_for,
    default_brackets,
    liquidation_level,
    maintenance_margin,
    max_notional_for,
    to_wallet,
)
from simulator.exchange_info import DEFAULT_LIQUIDATION_FEE_RATE, liquidation_fee_rates, load_exchange_info
from simulator.matching import (
    PATH_START,
    PathKey,
    candle_path,
    first_reach,
    price_at,
    resting_fill_price,
    round_to_tick,
    taker_price,
    volume_cap,
)
from utils.clock import Clock
from utils.domain import (
    AlgoStatus,
    Candle,
    ExecutionType,
    Fill,
    MarginType,
    MarkPrice,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
    TimeInForce,
    WorkingType,
)
from utils.errors import BinanceError
from utils.filters import SymbolFilters, parse_exchange_info

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
USDT = "USDT"
_CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
_ALGO_TYPES = (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.STOP, OrderType.TAKE_PROFIT)
_MARKET_ALGO_TYPES = (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
_TEN_THOUSAND = Decimal(10_000)


@dataclass(frozen=True)
class SimConfig:
    """How the simulated exchange charges and fills. Every knob is described in docs/simulator.md."""

    maker_fee_rate: Decimal = Decimal("0.0002")
    taker_fee_rate: Decimal = Decimal("0.0005")
    # Market orders (and the taker part of marketable limits, triggered stops) pay this much past the reference
    # price, in basis points: 1 bp = 0.01 % = a fraction of 0.0001.
    slippage_bps: Decimal = Decimal("1")
    default_leverage: int = 20
    # Funding interval per symbol in hours; symbols not listed use default_funding_interval_hours.
    funding_interval_hours: Mapping[str, int] = field(default_factory=dict)
    default_funding_interval_hours: int = 8
    default_funding_rate: Decimal = Decimal("0.0001")
    # Partial fills: limit orders take at most this fraction of a candle's traded volume (resting orders share it
    # per candle; an immediate limit execution may take it from the last candle). Market orders fill whole.
    max_volume_fraction: Decimal = Decimal("0.1")
    # A resting limit fills only when the candle traded strictly through its price (False) or also on a touch.
    fill_on_touch: bool = False
    # Maintenance margin: a flat rate per symbol overrides the brackets' rates.
    maintenance_margin_rate: Mapping[str, Decimal] = field(default_factory=dict)
    # Leverage brackets per symbol (simulator.account.parse_leverage_brackets of GET /fapi/v1/leverageBracket);
    # symbols not listed get one tier from exchangeInfo (maintMarginPercent, 100 / requiredMarginPercent).
    leverage_brackets: Mapping[str, Sequence[LeverageBracket]] = field(default_factory=dict)
    # Liquidation clearance fee rate per symbol (exchangeInfo liquidationFee); others use the default.
    liquidation_fee_rate: Mapping[str, Decimal] = field(default_factory=dict)
    default_liquidation_fee_rate: Decimal = DEFAULT_LIQUIDATION_FEE_RATE
    # A cancelled or expired order with no fill can be queried for this long (Binance: 3 days).
    order_retention_ms: int = 3 * DAY_MS
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("maker_fee_rate", "taker_fee_rate", "slippage_bps", "max_volume_fraction"):
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


class _Working:
    """The engine's record of one order: the domain Order plus what matching needs."""

    __slots__ = ("order", "orig_type", "seq", "margin_direction", "closing", "booked", "algo")

    def __init__(self, order: Order, orig_type: OrderType, seq: int, margin_direction: int, closing: bool,
                 algo: AlgoOrder | None = None) -> None:
        self.order = order
        self.orig_type = orig_type
        self.seq = seq
        self.margin_direction = margin_direction  # +1 may open/extend a long, -1 a short, 0 only closes
        self.closing = closing                    # reduce-only semantics (reduceOnly, or a hedge-mode close)
        self.booked = False                       # resting in the book (counted in the notional sums)
        self.algo = algo                          # the conditional order that placed it, if any


class _AlgoWorking:
    __slots__ = ("algo", "seq")

    def __init__(self, algo: AlgoOrder, seq: int) -> None:
        self.algo = algo
        self.seq = seq


class _Symbol:
    """Per-symbol state: rules, prices, funding schedule, book, positions."""

    __slots__ = (
        "name", "filters", "brackets", "max_leverage", "leverage", "margin_type", "liquidation_fee_rate",
        "tick", "lot_step", "has_candle", "last_price", "last_low", "last_high", "last_volume", "last_open_time",
        "mark_price", "mark_from_feed", "funding_rate", "next_funding_time", "funding_interval_ms",
        "open_orders", "open_by_client", "orders", "latest_by_client", "algos",
        "positions", "exposed", "bid_notional", "ask_notional", "open_long_notional", "open_short_notional",
        "trades",
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
        self.open_orders: dict[int, _Working] = {}
        self.open_by_client: dict[str, _Working] = {}
        self.orders: dict[int, _Working] = {}
        self.latest_by_client: dict[str, _Working] = {}
        self.algos: dict[int, _AlgoWorking] = {}
        self.positions: dict[PositionSide, PositionState] = {}
        self.exposed = False
        self.bid_notional = ZERO        # all open buy orders (Binance "b")
        self.ask_notional = ZERO        # all open sell orders (Binance "a")
        self.open_long_notional = ZERO  # open orders that may open or extend a long
        self.open_short_notional = ZERO
        self.trades: list[Fill] = []


def _snapshot(order: Order) -> Order:
    """A copy the caller may keep: the engine's own Order keeps changing."""
    return Order(order.symbol, order.order_id, order.client_order_id, order.side, order.order_type, order.status,
                 order.quantity, order.price, order.time_in_force, order.position_side, order.reduce_only,
                 order.close_position, order.stop_price, order.executed_quantity, order.cum_quote,
                 order.avg_price, order.working_type, order.create_time, order.update_time)


def _algo_snapshot(algo: AlgoOrder) -> AlgoOrder:
    return AlgoOrder(algo.algo_id, algo.client_algo_id, algo.symbol, algo.side, algo.order_type, algo.status,
                     algo.trigger_price, algo.quantity, algo.price, algo.time_in_force, algo.position_side,
                     algo.reduce_only, algo.close_position, algo.working_type, algo.create_time, algo.update_time,
                     algo.trigger_time, algo.actual_order_id, algo.actual_order_type, algo.executed_quantity,
                     algo.avg_price, algo.reject_reason)


# A place and a range to execute at: (reference price, low, high, traded volume) of the candle it happens in.
_Quote = tuple[Decimal, Decimal, Decimal, Decimal]


class SimExchange:
    """A Binance USD-M Futures exchange for one USDT-margined account, driven by candles, mark prices and a clock."""

    def __init__(
        self,
        symbols: Mapping[str, SymbolFilters],
        *,
        clock: Clock,
        config: SimConfig = SimConfig(),
        initial_balance: Decimal = Decimal("10000"),
    ) -> None:
        self._clock = clock
        self._config = config
        self._maker_fee = config.maker_fee_rate
        self._taker_fee = config.taker_fee_rate
        self._slippage = config.slippage_fraction
        self._fraction = config.max_volume_fraction
        self._strict = not config.fill_on_touch
        self._symbols: dict[str, _Symbol] = {}
        for name, filters in symbols.items():
            rate = config.maintenance_margin_rate.get(name)
            brackets = config.leverage_brackets.get(name)
            if brackets:
                if rate is not None:
                    brackets = [LeverageBracket(t.bracket, t.initial_leverage, t.notional_cap, t.notional_floor,
                                                rate, ZERO) for t in brackets]
            else:
                brackets = default_brackets(filters, rate)
            hours = config.funding_interval_hours.get(name, config.default_funding_interval_hours)
            state = _Symbol(filters, brackets, config.default_leverage,
                            config.liquidation_fee_rate.get(name, config.default_liquidation_fee_rate),
                            config.default_funding_rate, hours * HOUR_MS)
            state.positions[PositionSide.BOTH] = PositionState(name, PositionSide.BOTH)
            self._symbols[name] = state
        self._dual_side = False
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._pending: deque[dict[str, Any]] = deque()
        self._flushing = False
        self._rng = random.Random(config.seed)
        self._next_order_id = 1
        self._next_trade_id = 1
        self._next_algo_id = 1
        self._next_liquidation = 1
        self._seq = 0
        self._algos: dict[int, AlgoOrder] = {}
        self._algo_by_client: dict[str, AlgoOrder] = {}
        self._open_algo_by_client: dict[str, _AlgoWorking] = {}
        if initial_balance < 0:
            raise ValueError("initial_balance must not be negative")
        self._wallet = initial_balance
        self._deposits = initial_balance
        self._realized = ZERO
        self._fees = ZERO
        self._funding = ZERO
        self._update_time = clock.now_ms()

    @classmethod
    def from_exchange_info(
        cls,
        document: Mapping[str, Any] | None = None,
        *,
        clock: Clock,
        config: SimConfig = SimConfig(),
        initial_balance: Decimal = Decimal("10000"),
    ) -> SimExchange:
        """An exchange for every symbol of an exchangeInfo document (default: the shipped one), taking each
        symbol's liquidation clearance fee from it unless ``config`` sets one."""
        document = document if document is not None else load_exchange_info()
        rates = {**liquidation_fee_rates(document), **config.liquidation_fee_rate}
        return cls(parse_exchange_info(document), clock=clock,
                   config=dataclasses.replace(config, liquidation_fee_rate=rates), initial_balance=initial_balance)

    # ================================================================================================ listeners
    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Receive every user-data-stream event (treat the dicts as read-only; one dict goes to every listener)."""
        self._listeners.append(callback)

    def _flush(self) -> None:
        """Deliver queued events in order, once the change that produced them is complete."""
        if self._flushing:
            return
        self._flushing = True
        try:
            pending = self._pending
            while pending:
                event = pending.popleft()
                for listener in self._listeners:
                    listener(event)
        finally:
            self._flushing = False

    # ========================================================================================= account config
    @property
    def dual_side_position(self) -> bool:
        return self._dual_side

    @property
    def config(self) -> SimConfig:
        return self._config

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._symbols)

    def filters(self, symbol: str) -> SymbolFilters:
        return self._symbol(symbol).filters

    def set_leverage(self, symbol: str, leverage: int) -> dict[str, Any]:
        """POST /fapi/v1/leverage. Returns Binance's response body."""
        st = self._symbol(symbol)
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= st.max_leverage:
            raise codes.invalid_leverage(leverage)
        notional = self._position_notional(st)
        if st.margin_type is MarginType.ISOLATED and st.exposed and leverage < st.leverage:
            raise codes.reject(codes.ISOLATED_LEVERAGE_REDUCTION)
        max_notional = max_notional_for(st.brackets, leverage)
        if notional > max_notional:
            raise codes.reject(codes.MAX_LEVERAGE_RATIO)
        previous = st.leverage
        st.leverage = leverage
        if self._available_balance() < 0 and leverage < previous:
            st.leverage = previous
            raise codes.reject(codes.MIN_LEVERAGE_RATIO)
        now = self._clock.now_ms()
        if self._listeners:
            self._pending.append(events.account_config_update_leverage(time=now, symbol=symbol, leverage=leverage))
            self._flush()
        return rest_shapes.leverage_response(symbol, leverage, max_notional)

    def liquidation_fee_rate(self, symbol: str) -> Decimal:
        return self._symbol(symbol).liquidation_fee_rate

    def leverage(self, symbol: str) -> int:
        return self._symbol(symbol).leverage

    def margin_type(self, symbol: str) -> MarginType:
        return self._symbol(symbol).margin_type

    def set_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        """POST /fapi/v1/marginType (Binance answers {"code": 200, "msg": "success"})."""
        st = self._symbol(symbol)
        margin_type = MarginType(margin_type)
        if st.margin_type is margin_type:
            raise codes.reject(codes.NO_NEED_TO_CHANGE_MARGIN_TYPE)
        if st.open_orders or st.algos:
            raise codes.reject(codes.MARGIN_TYPE_OPEN_ORDERS)
        if st.exposed:
            raise codes.reject(codes.MARGIN_TYPE_POSITION)
        st.margin_type = margin_type

    def set_position_mode(self, dual_side: bool) -> None:
        """POST /fapi/v1/positionSide/dual: True = hedge mode (LONG/SHORT), False = one-way (BOTH)."""
        dual_side = bool(dual_side)
        if dual_side == self._dual_side:
            raise codes.reject(codes.NO_NEED_TO_CHANGE_POSITION_SIDE)
        if any(st.open_orders or st.algos for st in self._symbols.values()):
            raise codes.reject(codes.POSITION_SIDE_OPEN_ORDERS)
        if any(st.exposed for st in self._symbols.values()):
            raise codes.reject(codes.POSITION_SIDE_POSITION)
        self._dual_side = dual_side
        sides = (PositionSide.LONG, PositionSide.SHORT) if dual_side else (PositionSide.BOTH,)
        for st in self._symbols.values():
            st.positions = {side: PositionState(st.name, side) for side in sides}

    def deposit(self, amount: Decimal, asset: str = USDT) -> None:
        """Add funds to the wallet (pushes ACCOUNT_UPDATE with reason DEPOSIT)."""
        if asset != USDT:
            raise BinanceError(-1126, "This asset is not supported.")
        if not isinstance(amount, Decimal) or amount <= 0:
            raise BinanceError(-4055, "Amount must be positive.")
        self._wallet += amount
        self._deposits += amount
        now = self._clock.now_ms()
        self._update_time = now
        if self._listeners:
            self._pending.append(events.account_update(
                time=now, reason="DEPOSIT",
                balances=[events.balance_entry(self._wallet, self._cross_wallet(), amount)], positions=[]))
            self._flush()

    def set_funding_rate(self, symbol: str, rate: Decimal, *, next_funding_time: int | None = None) -> None:
        """Set the rate charged at the next funding time (and that time) without feeding a mark price."""
        st = self._symbol(symbol)
        st.funding_rate = rate
        if next_funding_time is not None:
            st.next_funding_time = next_funding_time

    # =============================================================================================== orders
    def new_order(
        self,
        *,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        position_side: PositionSide = PositionSide.BOTH,
        reduce_only: bool = False,
        client_order_id: str | None = None,
    ) -> Order:
        """POST /fapi/v1/order (LIMIT or MARKET). Returns the order as it stands after any immediate execution."""
        st = self._symbol(symbol)
        if side.__class__ is not Side:
            side = Side(side)
        if order_type.__class__ is not OrderType:
            order_type = OrderType(order_type)
        if position_side.__class__ is not PositionSide:
            position_side = PositionSide(position_side)
        if order_type is OrderType.LIMIT:
            if time_in_force is None:
                raise codes.mandatory("timeInForce")
            if time_in_force.__class__ is not TimeInForce:
                time_in_force = TimeInForce(time_in_force)
            if time_in_force is TimeInForce.GTD:
                raise codes.reject(codes.INVALID_TIF)
            if price is None:
                raise codes.mandatory("price")
        elif order_type is OrderType.MARKET:
            if price is not None:
                raise codes.not_required("price")
            time_in_force = TimeInForce.GTC
        elif order_type.is_conditional:
            raise codes.reject(codes.USE_ALGO_ENDPOINT)
        else:
            raise codes.reject(codes.INVALID_ORDER_TYPE)
        if quantity is None:
            raise codes.mandatory("quantity")
        closing = self._check_position_side(position_side, side, reduce_only)
        client_order_id = self._client_id(st.open_by_client, client_order_id)
        if order_type is OrderType.MARKET and not st.has_candle:
            raise codes.reject(codes.UNABLE_TO_FILL)
        violation = st.filters.validate(
            order_type=order_type, quantity=quantity, price=price, mark_price=st.mark_price,
            reduce_only=closing, open_orders=len(st.open_orders),
            last_price=st.last_price if st.has_candle else None)
        if violation is not None:
            raise BinanceError(violation.code, violation.message)
        position = st.positions[position_side]
        if closing:
            closable = self._closable(position, side)
            if closable == 0 or (self._dual_side and not reduce_only
                                 and quantity + self._pending_close(st, position_side, side) > closable):
                raise codes.reject(codes.REDUCE_ONLY_REJECT)
        buying = side is Side.BUY
        if order_type is OrderType.MARKET:
            reference = taker_price(st.last_price, buying, self._slippage, st.tick, st.last_low, st.last_high)
            self._check_market_percent_price(st, reference)
            marketable = True
        else:
            if price is None:
                raise codes.mandatory("price")
            reference = price
            marketable = st.has_candle and (price >= st.last_price if buying else price <= st.last_price)
            if time_in_force is TimeInForce.GTX and marketable:
                raise codes.reject(codes.GTX_REJECT)
            if time_in_force is TimeInForce.FOK:
                fillable = volume_cap(st.last_volume, self._fraction, st.lot_step) if marketable else ZERO
                if closing:
                    fillable = min(fillable, self._closable(position, side))
                if quantity > fillable:
                    raise codes.reject(codes.FOK_REJECT)
        margin_direction = 0 if closing else (1 if buying else -1)
        if margin_direction:
            self._check_margin(st, margin_direction, quantity * reference)
        now = self._clock.now_ms()
        order = Order(symbol, self._next_order_id, client_order_id, side, order_type, OrderStatus.NEW, quantity,
                      price if price is not None else ZERO, time_in_force, position_side, reduce_only, False,
                      ZERO, ZERO, ZERO, ZERO, WorkingType.CONTRACT_PRICE, now, now)
        self._next_order_id += 1
        self._seq += 1
        working = _Working(order, order_type, self._seq, margin_direction, closing)
        self._accept(st, working, marketable, (st.last_price, st.last_low, st.last_high, st.last_volume))
        if self._pending:
            self._flush()
        return _snapshot(order)

    def cancel_order(self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None) -> Order:
        """DELETE /fapi/v1/order by orderId (wins when both are given) or origClientOrderId."""
        st = self._symbol(symbol)
        if order_id is not None:
            working = st.open_orders.get(order_id)
        elif client_order_id is not None:
            working = st.open_by_client.get(client_order_id)
        else:
            raise codes.one_of("orderId", "origClientOrderId")
        if working is None:
            raise codes.reject(codes.UNKNOWN_ORDER)
        self._finish(st, working, OrderStatus.CANCELED, ExecutionType.CANCELED)
        self._flush()
        return _snapshot(working.order)

    def cancel_all_orders(self, symbol: str) -> list[Order]:
        """DELETE /fapi/v1/allOpenOrders: cancels the symbol's open (non-algo) orders; returns them."""
        st = self._symbol(symbol)
        cancelled = list(st.open_orders.values())
        for working in cancelled:
            self._finish(st, working, OrderStatus.CANCELED, ExecutionType.CANCELED)
        self._flush()
        return [_snapshot(working.order) for working in cancelled]

    def query_order(self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None) -> Order:
        """GET /fapi/v1/order: open, filled, cancelled or expired (an unfilled closed order for 3 days only)."""
        st = self._symbol(symbol)
        if order_id is not None:
            working = st.orders.get(order_id)
        elif client_order_id is not None:
            working = st.latest_by_client.get(client_order_id)
        else:
            raise codes.one_of("orderId", "origClientOrderId")
        if working is None:
            raise codes.reject(codes.NO_SUCH_ORDER)
        order = working.order
        if (order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and order.executed_quantity == 0
                and self._clock.now_ms() - order.update_time > self._config.order_retention_ms):
            raise codes.reject(codes.NO_SUCH_ORDER)
        return _snapshot(order)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """GET /fapi/v1/openOrders, oldest first."""
        states = [self._symbol(symbol)] if symbol is not None else list(self._symbols.values())
        return [_snapshot(w.order) for st in states for w in st.open_orders.values()]

    def order_orig_type(self, symbol: str, order_id: int) -> OrderType:
        """Binance ``origType`` of an order (a triggered conditional keeps its algo type)."""
        working = self._symbol(symbol).orders.get(order_id)
        if working is None:
            raise codes.reject(codes.NO_SUCH_ORDER)
        return working.orig_type

    # ========================================================================================== algo orders
    def new_algo_order(
        self,
        *,
        symbol: str,
        side: Side,
        order_type: OrderType,
        trigger_price: Decimal,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        close_position: bool = False,
        working_type: WorkingType = WorkingType.CONTRACT_PRICE,
        position_side: PositionSide = PositionSide.BOTH,
        reduce_only: bool = False,
        client_algo_id: str | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> AlgoOrder:
        """POST /fapi/v1/algoOrder (algoType CONDITIONAL): STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT."""
        st = self._symbol(symbol)
        side = Side(side)
        order_type = OrderType(order_type)
        working_type = WorkingType(working_type)
        position_side = PositionSide(position_side)
        time_in_force = TimeInForce(time_in_force)
        if order_type not in _ALGO_TYPES:
            raise codes.reject(codes.INVALID_ORDER_TYPE)
        if trigger_price is None:
            raise codes.mandatory("triggerPrice")
        is_market = order_type in _MARKET_ALGO_TYPES
        if close_position:
            if not is_market:
                raise BinanceError(
                    -4136, f"Target strategy invalid for orderType {order_type.value},closePosition true")
            if quantity is not None:
                raise codes.reject(codes.QUANTITY_WITH_CLOSE_POSITION)
            if reduce_only:
                raise codes.not_required("reduceonly")
        self._check_position_side(position_side, side, reduce_only)
        if close_position and self._dual_side and (
                (position_side is PositionSide.LONG) == (side is Side.BUY)):
            raise codes.reject(codes.REDUCE_ONLY_REJECT)
        if is_market:
            if price is not None:
                raise codes.not_required("price")
            price = ZERO
        else:
            if price is None:
                raise codes.mandatory("price")
            if (violation := st.filters.check_price(price)) is not None:
                raise BinanceError(violation.code, violation.message)
        if time_in_force not in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTX) or (
                is_market and time_in_force is not TimeInForce.GTC):
            raise codes.reject(codes.INVALID_TIF)
        if (violation := st.filters.check_price(trigger_price)) is not None:
            raise BinanceError(violation.code, violation.message)
        if close_position:
            quantity = ZERO
        else:
            if quantity is None:
                raise codes.mandatory("quantity")
            violation = st.filters.check_quantity(quantity, OrderType.MARKET if is_market else OrderType.LIMIT)
            if violation is None:
                violation = st.filters.check_notional(quantity, price or trigger_price, reduce_only)
            if violation is not None:
                raise BinanceError(violation.code, violation.message)
        if len(st.algos) >= st.filters.max_num_algo_orders:
            raise codes.reject(codes.MAX_STOP_ORDERS)
        if close_position and any(
                w.algo.close_position and w.algo.order_type is order_type and w.algo.side is side
                and w.algo.position_side is position_side for w in st.algos.values()):
            raise codes.reject(codes.CLOSE_POSITION_EXISTS)
        client_algo_id = self._client_id(self._open_algo_by_client, client_algo_id)
        reference = self._working_price(st, working_type)
        falling = self._trigger_falls(order_type, side)
        if reference and (reference <= trigger_price if falling else reference >= trigger_price):
            raise codes.reject(codes.WOULD_IMMEDIATELY_TRIGGER)
        now = self._clock.now_ms()
        algo = AlgoOrder(self._next_algo_id, client_algo_id, symbol, side, order_type, AlgoStatus.NEW,
                         trigger_price, quantity, price, time_in_force, position_side, reduce_only, close_position,
                         working_type, now, now)
        self._next_algo_id += 1
        self._seq += 1
        working = _AlgoWorking(algo, self._seq)
        st.algos[algo.algo_id] = working
        self._algos[algo.algo_id] = algo
        self._algo_by_client[client_algo_id] = algo
        self._open_algo_by_client[client_algo_id] = working
        self._algo_event(algo, now)
        self._flush()
        return _algo_snapshot(algo)

    def cancel_algo_order(self, *, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        """DELETE /fapi/v1/algoOrder by algoId or clientAlgoId (-2011 when not open)."""
        if algo_id is not None:
            algo = self._algos.get(algo_id)
        elif client_algo_id is not None:
            found = self._open_algo_by_client.get(client_algo_id)
            algo = found.algo if found else None
        else:
            raise codes.one_of("algoId", "clientAlgoId")
        if algo is None or algo.status is not AlgoStatus.NEW:
            raise codes.reject(codes.UNKNOWN_ORDER)
        self._close_algo(self._symbols[algo.symbol], algo, AlgoStatus.CANCELED)
        self._flush()
        return _algo_snapshot(algo)

    def cancel_all_algo_orders(self, symbol: str) -> list[AlgoOrder]:
        """DELETE /fapi/v1/algoOpenOrders for one symbol."""
        st = self._symbol(symbol)
        cancelled = [w.algo for w in st.algos.values() if w.algo.status is AlgoStatus.NEW]
        for algo in cancelled:
            self._close_algo(st, algo, AlgoStatus.CANCELED)
        self._flush()
        return [_algo_snapshot(algo) for algo in cancelled]

    def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        """GET /fapi/v1/openAlgoOrders, oldest first."""
        states = [self._symbol(symbol)] if symbol is not None else list(self._symbols.values())
        return [_algo_snapshot(w.algo) for st in states for w in st.algos.values()]

    def query_algo_order(self, *, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        """GET /fapi/v1/algoOrder (-2013 when unknown)."""
        if algo_id is not None:
            algo = self._algos.get(algo_id)
        elif client_algo_id is not None:
            algo = self._algo_by_client.get(client_algo_id)
        else:
            raise codes.one_of("algoId", "clientAlgoId")
        if algo is None:
            raise codes.reject(codes.NO_SUCH_ORDER)
        return _algo_snapshot(algo)

    # ========================================================================================== market data
    def on_candle(self, candle: Candle) -> None:
        """A closed 1m candle. The clock must already be at or past its close (no look-ahead).

        Settles funding due at or before the candle's open, matches the orders and conditional orders that
        existed at the open against the candle's path, checks liquidation along it (unless a mark-price feed
        drives liquidation), then moves last price (and, without a feed, the mark) to the close and settles
        funding due by now.
        """
        st = self._symbols.get(candle.symbol)
        if st is None:
            raise codes.reject(codes.INVALID_SYMBOL)
        now = self._clock.now_ms()
        open_time = candle.open_time
        if not candle.closed:
            raise ValueError(f"{candle.symbol} candle {open_time} is not closed; the engine matches closed candles")
        if now < candle.close_time:
            raise ValueError(f"{candle.symbol} candle closing at {candle.close_time} fed at clock {now}: set the "
                             "clock to the candle's close (or later) first, or the engine would see the future")
        if open_time <= st.last_open_time:
            raise ValueError(f"{candle.symbol} candle {open_time} is not after the last one ({st.last_open_time})")
        if st.next_funding_time == 0:
            interval = st.funding_interval_ms
            st.next_funding_time = (open_time // interval + 1) * interval
        elif st.next_funding_time <= open_time:
            # The candle's own liquidation check (along its path, or after it with a feed) covers this moment.
            self._settle_funding(st, open_time, check_liquidation=False)
        if st.open_orders or st.algos or st.exposed:
            self._match_candle(st, candle)
        st.has_candle = True
        st.last_price = candle.close
        st.last_low = candle.low
        st.last_high = candle.high
        st.last_volume = candle.volume
        st.last_open_time = open_time
        if not st.mark_from_feed:
            st.mark_price = candle.close
        elif st.exposed:
            self._liquidate_underwater()
        if st.next_funding_time <= now:
            self._settle_funding(st, now)
        if self._pending:
            self._flush()

    def on_mark_price(self, mark: MarkPrice) -> None:
        """A mark-price update: from now on this symbol's mark (and MARK_PRICE triggers, liquidation) follow the feed.

        Funding due by now is settled first at the previous mark and rate; then the new mark, funding rate and
        next funding time apply; MARK_PRICE conditional orders whose trigger the mark reached fire; then any
        pool below maintenance margin is liquidated.
        """
        st = self._symbols.get(mark.symbol)
        if st is None:
            raise codes.reject(codes.INVALID_SYMBOL)
        now = self._clock.now_ms()
        if st.next_funding_time and st.next_funding_time <= now:
            self._settle_funding(st, now)
        st.mark_from_feed = True
        st.mark_price = mark.mark_price
        st.funding_rate = mark.funding_rate
        if mark.next_funding_time:
            st.next_funding_time = mark.next_funding_time
        elif st.next_funding_time == 0:
            st.next_funding_time = (now // st.funding_interval_ms + 1) * st.funding_interval_ms
        if st.has_candle:
            if st.algos:
                quote = (st.last_price, st.last_low, st.last_high, st.last_volume)
                for working in sorted(st.algos.values(), key=lambda w: w.seq):
                    algo = working.algo
                    if algo.status is AlgoStatus.NEW and algo.working_type is WorkingType.MARK_PRICE:
                        falling = self._trigger_falls(algo.order_type, algo.side)
                        if mark.mark_price <= algo.trigger_price if falling else mark.mark_price >= algo.trigger_price:
                            self._trigger(st, algo, quote)
            if st.exposed:
                self._liquidate_underwater()
        if st.next_funding_time <= now:
            self._settle_funding(st, now)
        if self._pending:
            self._flush()

    def settle_due_funding(self) -> None:
        """Settle every symbol's funding whose time is at or before the clock (on_candle/on_mark_price also do)."""
        now = self._clock.now_ms()
        for st in self._symbols.values():
            if st.next_funding_time and st.next_funding_time <= now:
                self._settle_funding(st, now)
        if self._pending:
            self._flush()

    # ================================================================================================ views
    def positions(self, symbol: str | None = None) -> list[Position]:
        """Open positions (amount != 0); with a symbol, its position per side of the current mode (flat too)."""
        states = [self._symbol(symbol)] if symbol is not None else list(self._symbols.values())
        result = []
        for st in states:
            for position in st.positions.values():
                if position.amount or symbol is not None:
                    result.append(Position(
                        symbol=st.name, position_side=position.position_side, amount=position.amount,
                        entry_price=position.entry_price, break_even_price=position.break_even_price,
                        realized_pnl=position.realized_pnl, unrealized_pnl=position.unrealized_pnl(st.mark_price),
                        mark_price=st.mark_price, leverage=st.leverage, margin_type=st.margin_type,
                        isolated_wallet=position.isolated_wallet, update_time=position.update_time))
        return result

    def account(self) -> AccountState:
        cross_upnl, cross_im, order_im, total_mm, total_upnl, total_position_im = self._margin_totals()
        cross_wallet = self._cross_wallet()
        return AccountState(
            wallet_balance=self._wallet,
            available_balance=cross_wallet + cross_upnl - cross_im - order_im,
            total_initial_margin=total_position_im + order_im,
            total_maintenance_margin=total_mm,
            unrealized_pnl=total_upnl,
            equity=self._wallet + total_upnl,
            deposits=self._deposits,
            realized_pnl=self._realized,
            fees_paid=self._fees,
            funding_total=self._funding,
            cross_wallet_balance=cross_wallet,
            total_position_initial_margin=total_position_im,
            total_open_order_initial_margin=order_im,
            cross_unrealized_pnl=cross_upnl,
            update_time=self._update_time,
        )

    def position_risk(self, symbol: str | None = None) -> list[PositionRisk]:
        """Per-position risk figures (GET /fapi/v3/positionRisk lists symbols with a position or open orders)."""
        states = [self._symbol(symbol)] if symbol is not None else list(self._symbols.values())
        result = []
        for st in states:
            if not (st.exposed or st.open_orders or symbol is not None):
                continue
            symbol_order_im = self._open_order_margin(st)
            max_notional = max_notional_for(st.brackets, st.leverage)
            for position in st.positions.values():
                notional = position.amount * st.mark_price
                size = abs(notional)
                isolated = st.margin_type is MarginType.ISOLATED
                upnl = position.unrealized_pnl(st.mark_price)
                level = self._liquidation_levels(st, position)
                if position.position_side is PositionSide.LONG:
                    order_im = st.open_long_notional / st.leverage
                elif position.position_side is PositionSide.SHORT:
                    order_im = st.open_short_notional / st.leverage
                else:
                    order_im = symbol_order_im
                result.append(PositionRisk(
                    symbol=st.name, position_side=position.position_side, amount=position.amount,
                    entry_price=position.entry_price, break_even_price=position.break_even_price,
                    mark_price=st.mark_price, unrealized_pnl=upnl,
                    liquidation_price=level.price if level is not None and not level.immediate else ZERO,
                    notional=notional,
                    isolated_margin=position.isolated_wallet + upnl if isolated else ZERO,
                    isolated_wallet=position.isolated_wallet if isolated else ZERO,
                    initial_margin=size / st.leverage + order_im,
                    maintenance_margin=maintenance_margin(st.brackets, size) if size else ZERO,
                    position_initial_margin=size / st.leverage, open_order_initial_margin=order_im,
                    bid_notional=st.bid_notional, ask_notional=st.ask_notional, leverage=st.leverage,
                    margin_type=st.margin_type, max_notional=max_notional, update_time=position.update_time))
        return result

    def user_trades(self, symbol: str, *, start_time: int | None = None, end_time: int | None = None,
                    from_id: int | None = None, limit: int = 500) -> list[Fill]:
        """GET /fapi/v1/userTrades: ascending by id; without fromId the most recent ``limit`` in the window."""
        st = self._symbol(symbol)
        if not 1 <= limit <= 1000:
            raise codes.reject(codes.INVALID_LIMIT)
        if from_id is not None:
            if start_time is not None or end_time is not None:
                raise codes.reject(codes.BAD_PARAM_COMBO)
            return [fill for fill in st.trades if fill.trade_id >= from_id][:limit]
        if start_time is not None and end_time is not None and end_time - start_time > 7 * DAY_MS:
            raise codes.reject(codes.LOOKUP_TOO_LONG)
        if start_time is None and end_time is None:
            start_time = self._clock.now_ms() - 7 * DAY_MS
        selected = [fill for fill in st.trades
                    if (start_time is None or fill.time >= start_time) and (end_time is None or fill.time <= end_time)]
        return selected[-limit:]

    def all_orders(self, symbol: str, *, order_id: int | None = None, start_time: int | None = None,
                   end_time: int | None = None, limit: int = 500) -> list[Order]:
        """GET /fapi/v1/allOrders: from ``order_id`` up, else the most recent ``limit`` created in the window
        (at most 7 days, default the last 7); unfilled cancelled/expired orders only within their retention."""
        st = self._symbol(symbol)
        if not 1 <= limit <= 1000:
            raise codes.reject(codes.INVALID_LIMIT)
        if start_time is not None and end_time is not None and end_time - start_time > 7 * DAY_MS:
            raise codes.reject(codes.LOOKUP_TOO_LONG)
        now = self._clock.now_ms()
        retention = self._config.order_retention_ms
        orders = [w.order for w in st.orders.values()
                  if not (w.order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED)
                          and w.order.executed_quantity == 0 and now - w.order.update_time > retention)]
        if order_id is not None:
            return [_snapshot(o) for o in orders if o.order_id >= order_id][:limit]
        if start_time is None and end_time is None:
            start_time = now - 7 * DAY_MS
        selected = [o for o in orders if (start_time is None or o.create_time >= start_time)
                    and (end_time is None or o.create_time <= end_time)]
        return [_snapshot(o) for o in selected[-limit:]]

    def leverage_brackets(self, symbol: str) -> tuple[LeverageBracket, ...]:
        """GET /fapi/v1/leverageBracket: the symbol's tiers, lowest notional first."""
        return self._symbol(symbol).brackets

    def mark_price(self, symbol: str) -> Decimal:
        return self._symbol(symbol).mark_price

    def last_price(self, symbol: str) -> Decimal:
        return self._symbol(symbol).last_price

    def funding_rate(self, symbol: str) -> Decimal:
        return self._symbol(symbol).funding_rate

    def next_funding_time(self, symbol: str) -> int:
        return self._symbol(symbol).next_funding_time

    def position_risk_v3(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """GET /fapi/v3/positionRisk body."""
        return rest_shapes.position_risk_v3(self.position_risk(symbol))

    def account_v3(self) -> dict[str, Any]:
        """GET /fapi/v3/account body."""
        return rest_shapes.account_v3(self.account(), self.position_risk())

    # ============================================================================ order intake (internals)
    def _symbol(self, symbol: str) -> _Symbol:
        st = self._symbols.get(symbol)
        if st is None:
            raise codes.reject(codes.INVALID_SYMBOL)
        return st

    def _check_position_side(self, position_side: PositionSide, side: Side, reduce_only: bool) -> bool:
        """Reject a position side that does not fit the mode; True when the order can only close."""
        if self._dual_side:
            if position_side is PositionSide.BOTH:
                raise codes.reject(codes.POSITION_SIDE_NOT_MATCH)
            if reduce_only:
                raise codes.not_required("reduceonly")
            return (position_side is PositionSide.LONG) != (side is Side.BUY)
        if position_side is not PositionSide.BOTH:
            raise codes.reject(codes.POSITION_SIDE_NOT_MATCH)
        return reduce_only

    def _client_id(self, open_ids: Mapping[str, object], client_id: str | None) -> str:
        if client_id is None:  # 22 characters, like Binance's generated ids; from the seeded generator
            return f"{self._rng.getrandbits(88):022x}"
        if not isinstance(client_id, str) or _CLIENT_ID.fullmatch(client_id) is None:
            raise codes.reject(codes.CLIENT_ORDER_ID_INVALID)
        if client_id in open_ids:
            raise codes.reject(codes.DUPLICATED_CLIENT_ORDER_ID)
        return client_id

    @staticmethod
    def _closable(position: PositionState, side: Side) -> Decimal:
        """How much an order on ``side`` can close of ``position`` (0 when it would open or extend it)."""
        amount = position.amount
        if side is Side.BUY:
            return -amount if amount < 0 else ZERO
        return amount if amount > 0 else ZERO

    @staticmethod
    def _pending_close(st: _Symbol, position_side: PositionSide, side: Side) -> Decimal:
        """Unfilled quantity of open closing orders on a hedge-mode position."""
        return sum((w.order.quantity - w.order.executed_quantity for w in st.open_orders.values()
                    if w.closing and w.order.position_side is position_side and w.order.side is side), ZERO)

    def _check_market_percent_price(self, st: _Symbol, price: Decimal) -> None:
        filters = st.filters
        if filters.multiplier_up and st.mark_price:
            low, high = filters.percent_price_bounds(st.mark_price)
            if not low <= price <= high:
                raise codes.reject(codes.MARKET_ORDER_PERCENT_PRICE)

    def _check_margin(self, st: _Symbol, direction: int, notional: Decimal) -> None:
        """-2027 when the worst-case position would pass the bracket cap; -2019 when margin does not cover it."""
        extra_long = notional if direction > 0 else ZERO
        extra_short = notional if direction < 0 else ZERO
        cap = max_notional_for(st.brackets, st.leverage)
        if cap < UNLIMITED_NOTIONAL and self._worst_notional(st, extra_long, extra_short) > cap:
            raise codes.reject(codes.MAX_LEVERAGE_RATIO)
        required = self._open_order_margin(st, extra_long, extra_short) - self._open_order_margin(st)
        if required > 0 and required > self._available_balance():
            raise codes.reject(codes.MARGIN_INSUFFICIENT)

    def _worst_notional(self, st: _Symbol, extra_long: Decimal, extra_short: Decimal) -> Decimal:
        long_notional = st.open_long_notional + extra_long
        short_notional = st.open_short_notional + extra_short
        mark = st.mark_price
        if self._dual_side:
            long_amount = st.positions[PositionSide.LONG].amount
            short_amount = st.positions[PositionSide.SHORT].amount
            return max(long_amount * mark + long_notional, -short_amount * mark + short_notional)
        position_notional = st.positions[PositionSide.BOTH].amount * mark
        return max(abs(position_notional + long_notional), abs(position_notional - short_notional))

    def _accept(self, st: _Symbol, working: _Working, marketable: bool, quote: _Quote) -> None:
        """Record a validated order, execute what crosses now, and rest, expire or finish the rest."""
        order = working.order
        st.orders[order.order_id] = working
        st.latest_by_client[order.client_order_id] = working
        st.open_orders[order.order_id] = working
        st.open_by_client[order.client_order_id] = working
        if not marketable and order.time_in_force in (TimeInForce.GTC, TimeInForce.GTX):
            self._book(st, working)  # rests straight away: its NEW event already counts it in "b"/"a"
        if self._listeners:
            self._order_event(st, working, ExecutionType.NEW)
        if marketable:
            self._execute_now(st, working, quote)
        if order.status.is_open and not working.booked:
            tif = order.time_in_force
            if order.order_type is OrderType.MARKET or tif is TimeInForce.IOC or tif is TimeInForce.FOK:
                self._finish(st, working, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
            elif working.closing and self._closable(st.positions[order.position_side], order.side) == 0:
                self._finish(st, working, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
            else:
                self._book(st, working)

    def _execute_now(self, st: _Symbol, working: _Working, quote: _Quote) -> None:
        """Take liquidity at ``quote`` (reference, low, high, volume) as a taker."""
        order = working.order
        reference, low, high, volume = quote
        buying = order.side is Side.BUY
        quantity = order.quantity - order.executed_quantity
        if working.closing:
            closable = self._closable(st.positions[order.position_side], order.side)
            if closable < quantity:
                quantity = closable
        price = taker_price(reference, buying, self._slippage, st.tick, low, high)
        if order.order_type is not OrderType.MARKET:
            cap = volume_cap(volume, self._fraction, st.lot_step)
            if cap < quantity:
                quantity = cap
            limit = order.price
            if buying and price > limit or not buying and price < limit:
                price = limit
        if quantity > 0:
            self._fill(st, working, quantity, price, maker=False)

    # ================================================================================= book and execution
    def _book(self, st: _Symbol, working: _Working) -> None:
        order = working.order
        notional = (order.quantity - order.executed_quantity) * order.price
        working.booked = True
        if order.side is Side.BUY:
            st.bid_notional += notional
        else:
            st.ask_notional += notional
        if working.margin_direction > 0:
            st.open_long_notional += notional
        elif working.margin_direction < 0:
            st.open_short_notional += notional

    def _unbook(self, st: _Symbol, working: _Working, quantity: Decimal) -> None:
        order = working.order
        notional = quantity * order.price
        if order.side is Side.BUY:
            st.bid_notional -= notional
        else:
            st.ask_notional -= notional
        if working.margin_direction > 0:
            st.open_long_notional -= notional
        elif working.margin_direction < 0:
            st.open_short_notional -= notional

    def _remove_open(self, st: _Symbol, working: _Working) -> None:
        order = working.order
        del st.open_orders[order.order_id]
        if st.open_by_client.get(order.client_order_id) is working:
            del st.open_by_client[order.client_order_id]
        working.booked = False
        if working.algo is not None:
            self._finish_algo(st, working)

    def _finish(self, st: _Symbol, working: _Working, status: OrderStatus, execution: ExecutionType) -> None:
        """Take an open order off the book as CANCELED or EXPIRED."""
        order = working.order
        if working.booked:
            self._unbook(st, working, order.quantity - order.executed_quantity)
        order.status = status
        order.update_time = self._clock.now_ms()
        if self._listeners:
            self._order_event(st, working, execution)
        self._remove_open(st, working)

    def _fill(self, st: _Symbol, working: _Working, quantity: Decimal, price: Decimal, *, maker: bool,
              execution: ExecutionType = ExecutionType.TRADE, commission: Decimal | None = None) -> Fill:
        """One trade of ``working`` against the market: position, wallet, order, trade record, events."""
        order = working.order
        now = self._clock.now_ms()
        quote_quantity = price * quantity
        if commission is None:
            commission = to_wallet(quote_quantity * (self._maker_fee if maker else self._taker_fee))
        buying = order.side is Side.BUY
        position = st.positions[order.position_side]
        size_before = abs(position.amount)
        realized, closed = position.apply_fill(quantity if buying else -quantity, price, commission)
        if st.margin_type is MarginType.ISOLATED:
            if closed:
                released = position.isolated_wallet if closed == size_before else \
                    position.isolated_wallet * closed / size_before
                position.isolated_wallet -= released
            if closed < quantity:
                position.isolated_wallet += price * (quantity - closed) / st.leverage
        position.update_time = now
        self._wallet += realized - commission
        self._realized += realized
        self._fees += commission
        self._update_time = now
        if working.booked:
            self._unbook(st, working, quantity)
        executed = order.executed_quantity + quantity
        order.executed_quantity = executed
        order.cum_quote += quote_quantity
        order.avg_price = order.cum_quote / executed
        order.status = OrderStatus.FILLED if executed == order.quantity else OrderStatus.PARTIALLY_FILLED
        order.update_time = now
        st.exposed = any(p.amount for p in st.positions.values())
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        fill = Fill(st.name, trade_id, order.order_id, order.client_order_id, order.side, order.position_side,
                    price, quantity, quote_quantity, commission, USDT, realized, maker, now)
        st.trades.append(fill)
        if self._listeners:
            self._order_event(st, working, execution, quantity, price, commission, trade_id, maker, realized)
            self._account_event("ORDER", ZERO, [(st, position)])
        if order.status is OrderStatus.FILLED and order.order_id in st.open_orders:
            self._remove_open(st, working)
        return fill

    def _order_event(self, st: _Symbol, working: _Working, execution: ExecutionType, last_quantity: Decimal = ZERO,
                     last_price: Decimal = ZERO, commission: Decimal = ZERO, trade_id: int = 0,
                     maker: bool = False, realized: Decimal = ZERO) -> None:
        self._pending.append(events.order_trade_update(
            working.order, time=self._clock.now_ms(), execution_type=execution._value_,
            orig_type=working.orig_type._value_, last_quantity=last_quantity, last_price=last_price,
            commission=commission, trade_id=trade_id, maker=maker, realized_pnl=realized,
            bid_notional=st.bid_notional, ask_notional=st.ask_notional))

    def _account_event(self, reason: str, balance_change: Decimal,
                       positions: Sequence[tuple[_Symbol, PositionState]]) -> None:
        self._pending.append(events.account_update(
            time=self._clock.now_ms(), reason=reason,
            balances=[events.balance_entry(self._wallet, self._cross_wallet(), balance_change)],
            positions=[events.position_entry(
                symbol=st.name, amount=p.amount, entry_price=p.entry_price, break_even_price=p.break_even_price,
                accumulated_realized=p.realized_pnl, unrealized_pnl=p.unrealized_pnl(st.mark_price),
                margin_type=st.margin_type._value_,
                isolated_wallet=p.isolated_wallet if st.margin_type is MarginType.ISOLATED else ZERO,
                position_side=p.position_side._value_) for st, p in positions]))

    # ============================================================================================ matching
    def _match_candle(self, st: _Symbol, candle: Candle) -> None:
        """Run everything that the candle's path reaches, in path order (see simulator.matching)."""
        path = candle_path(candle)
        open_time = candle.open_time
        strict = self._strict
        candidates: list[tuple[PathKey, int, _Working | _AlgoWorking]] = []
        for working in st.open_orders.values():
            order = working.order
            if order.create_time <= open_time:
                key = first_reach(path, order.price, order.side is Side.BUY, strict=strict)
                if key is not None:
                    candidates.append((key, working.seq, working))
        feed = st.mark_from_feed
        for algo_working in st.algos.values():
            algo = algo_working.algo
            if (algo.status is AlgoStatus.NEW and algo.create_time <= open_time
                    and (algo.working_type is WorkingType.CONTRACT_PRICE or not feed)):
                key = first_reach(path, algo.trigger_price, self._trigger_falls(algo.order_type, algo.side))
                if key is not None:
                    candidates.append((key, algo_working.seq, algo_working))
        if not candidates and (feed or not st.exposed):
            return
        candidates.sort(key=lambda item: (item[0], item[1]))
        low, high, volume = candle.low, candle.high, candle.volume
        budget = volume_cap(volume, self._fraction, st.lot_step)
        previous = PATH_START
        for key, _, item in candidates:
            if not feed and st.exposed:
                self._liquidate_on_path(st, path, previous, key, low, high)
            previous = key
            if isinstance(item, _Working):
                order = item.order
                if not order.status.is_open or budget <= 0:
                    continue
                quantity = order.quantity - order.executed_quantity
                if item.closing:
                    closable = self._closable(st.positions[order.position_side], order.side)
                    if closable == 0:
                        self._finish(st, item, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
                        continue
                    quantity = min(quantity, closable)
                quantity = min(quantity, budget)
                budget -= quantity
                self._fill(st, item, quantity, resting_fill_price(order.price, order.side is Side.BUY, low, high),
                           maker=True)
                if item.closing and order.status.is_open and \
                        self._closable(st.positions[order.position_side], order.side) == 0:
                    self._finish(st, item, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
            elif item.algo.status is AlgoStatus.NEW:
                self._trigger(st, item.algo, (price_at(path, key), low, high, volume))
        if not feed and st.exposed:
            self._liquidate_on_path(st, path, previous, None, low, high)

    @staticmethod
    def _trigger_falls(order_type: OrderType, side: Side) -> bool:
        """True when the order triggers as the price falls to its trigger (sell stops, buy take-profits)."""
        stop = order_type is OrderType.STOP_MARKET or order_type is OrderType.STOP
        return stop == (side is Side.SELL)

    def _working_price(self, st: _Symbol, working_type: WorkingType) -> Decimal:
        if working_type is WorkingType.MARK_PRICE:
            return st.mark_price
        return st.last_price if st.has_candle else ZERO

    # ============================================================================================ algo flow
    def _algo_event(self, algo: AlgoOrder, now: int) -> None:
        algo.update_time = now
        if self._listeners:
            self._pending.append(events.algo_update(algo, time=now))

    def _close_algo(self, st: _Symbol, algo: AlgoOrder, status: AlgoStatus, reason: str = "") -> None:
        algo.status = status
        algo.reject_reason = reason
        working = st.algos.pop(algo.algo_id, None)
        if working is not None and self._open_algo_by_client.get(algo.client_algo_id) is working:
            del self._open_algo_by_client[algo.client_algo_id]
        self._algo_event(algo, self._clock.now_ms())

    def _trigger(self, st: _Symbol, algo: AlgoOrder, quote: _Quote) -> None:
        """The trigger price was reached: send the order to the matching engine at ``quote``."""
        now = self._clock.now_ms()
        algo.status = AlgoStatus.TRIGGERING
        algo.trigger_time = now
        self._algo_event(algo, now)
        side = algo.side
        position_side = algo.position_side
        closing = algo.reduce_only or algo.close_position or (
            self._dual_side and (position_side is PositionSide.LONG) != (side is Side.BUY))
        quantity = algo.quantity
        if closing:
            closable = self._closable(st.positions[position_side], side)
            if algo.close_position:
                quantity = closable
            if closable == 0:
                self._close_algo(st, algo, AlgoStatus.CANCELED, codes.ALGO_REDUCE_ONLY_REASON)
                return
        is_market = algo.order_type in _MARKET_ALGO_TYPES
        order_type = OrderType.MARKET if is_market else OrderType.LIMIT
        buying = side is Side.BUY
        reference = quote[0]
        fill_reference = taker_price(reference, buying, self._slippage, st.tick, quote[1], quote[2])
        margin_direction = 0 if closing else (1 if buying else -1)
        try:
            if algo.client_algo_id in st.open_by_client:
                raise codes.reject(codes.DUPLICATED_CLIENT_ORDER_ID)
            if margin_direction:
                self._check_margin(st, margin_direction, quantity * (fill_reference if is_market else algo.price))
        except BinanceError as error:
            self._close_algo(st, algo, AlgoStatus.REJECTED, error.msg)
            return
        marketable = is_market or (algo.price >= reference if buying else algo.price <= reference)
        if not is_market and marketable and algo.time_in_force is TimeInForce.GTX:
            self._close_algo(st, algo, AlgoStatus.REJECTED, codes.GTX_REJECT[1])
            return
        order = Order(st.name, self._next_order_id, algo.client_algo_id, side, order_type, OrderStatus.NEW,
                      quantity, ZERO if is_market else algo.price,
                      TimeInForce.GTC if is_market else algo.time_in_force, position_side,
                      algo.reduce_only or algo.close_position, algo.close_position, algo.trigger_price,
                      ZERO, ZERO, ZERO, algo.working_type, now, now)
        self._next_order_id += 1
        self._seq += 1
        working = _Working(order, algo.order_type, self._seq, margin_direction, closing, algo)
        algo.actual_order_id = order.order_id
        algo.actual_order_type = order_type.value
        # Status stays TRIGGERING while the order executes; Binance reports TRIGGERED after the order's own
        # events (and FINISHED once the order is done), so _finish_algo announces both when it is done at once.
        self._accept(st, working, marketable, quote)
        if algo.status is AlgoStatus.TRIGGERING:
            algo.status = AlgoStatus.TRIGGERED
            self._algo_event(algo, now)

    def _finish_algo(self, st: _Symbol, working: _Working) -> None:
        """The order a triggered conditional placed is done: the conditional is FINISHED."""
        algo = working.algo
        assert algo is not None
        if algo.status is AlgoStatus.TRIGGERING:
            algo.status = AlgoStatus.TRIGGERED
            self._algo_event(algo, self._clock.now_ms())
        algo.executed_quantity = working.order.executed_quantity
        algo.avg_price = working.order.avg_price
        self._close_algo(st, algo, AlgoStatus.FINISHED)

    # ================================================================================ funding & liquidation
    def _settle_funding(self, st: _Symbol, until: int, check_liquidation: bool = True) -> None:
        """Pay or receive funding for every funding time up to ``until``, at the current mark and rate."""
        while st.next_funding_time and st.next_funding_time <= until:
            if st.exposed and st.mark_price:
                isolated = st.margin_type is MarginType.ISOLATED
                for position in st.positions.values():
                    if not position.amount:
                        continue
                    amount = to_wallet(-position.amount * st.mark_price * st.funding_rate)
                    self._wallet += amount
                    self._funding += amount
                    if isolated:
                        position.isolated_wallet += amount
                    self._update_time = self._clock.now_ms()
                    if self._listeners:
                        self._account_event("FUNDING_FEE", amount, [(st, position)] if isolated else [])
            st.next_funding_time += st.funding_interval_ms
        if check_liquidation and st.exposed:
            self._liquidate_underwater()

    def _cross_wallet(self) -> Decimal:
        isolated = ZERO
        for st in self._symbols.values():
            if st.margin_type is MarginType.ISOLATED and st.exposed:
                for position in st.positions.values():
                    isolated += position.isolated_wallet
        return self._wallet - isolated

    def _position_notional(self, st: _Symbol) -> Decimal:
        return sum((abs(p.amount) for p in st.positions.values()), ZERO) * st.mark_price

    def _open_order_margin(self, st: _Symbol, extra_long: Decimal = ZERO, extra_short: Decimal = ZERO) -> Decimal:
        """Initial margin the open orders hold: one-way takes the larger side net of the position they would
        close first; hedge mode adds both sides."""
        long_notional = st.open_long_notional + extra_long
        short_notional = st.open_short_notional + extra_short
        if not long_notional and not short_notional:
            return ZERO
        if self._dual_side:
            return (long_notional + short_notional) / st.leverage
        position_notional = st.positions[PositionSide.BOTH].amount * st.mark_price
        if position_notional > 0:
            short_notional -= position_notional
        else:
            long_notional += position_notional
        worst = long_notional if long_notional > short_notional else short_notional
        return worst / st.leverage if worst > 0 else ZERO

    def _margin_totals(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
        """(cross unrealized PnL, cross position IM, open-order IM, maintenance, total unrealized, position IM)."""
        cross_upnl = cross_im = order_im = total_mm = total_upnl = position_im = ZERO
        for st in self._symbols.values():
            if st.open_long_notional or st.open_short_notional:
                order_im += self._open_order_margin(st)
            if not st.exposed:
                continue
            mark = st.mark_price
            cross = st.margin_type is MarginType.CROSSED
            for position in st.positions.values():
                amount = position.amount
                if not amount:
                    continue
                upnl = amount * (mark - position.entry_price)
                size = abs(amount) * mark
                im = size / st.leverage
                total_upnl += upnl
                position_im += im
                total_mm += maintenance_margin(st.brackets, size)
                if cross:
                    cross_upnl += upnl
                    cross_im += im
        return cross_upnl, cross_im, order_im, total_mm, total_upnl, position_im

    def _available_balance(self) -> Decimal:
        cross_upnl, cross_im, order_im, _, _, _ = self._margin_totals()
        return self._cross_wallet() + cross_upnl - cross_im - order_im

    def _cross_unrealized(self, exclude: PositionState | None = None) -> Decimal:
        total = ZERO
        for st in self._symbols.values():
            if st.exposed and st.margin_type is MarginType.CROSSED:
                for position in st.positions.values():
                    if position.amount and position is not exclude:
                        total += position.unrealized_pnl(st.mark_price)
        return total

    def _cross_collateral(self, exclude: _Symbol | None) -> Decimal:
        """Cross wallet + unrealized PnL - maintenance margin of the cross positions not in ``exclude``."""
        total = self._cross_wallet()
        for st in self._symbols.values():
            if st is exclude or not st.exposed or st.margin_type is not MarginType.CROSSED:
                continue
            for position in st.positions.values():
                if position.amount:
                    total += position.unrealized_pnl(st.mark_price)
                    total -= maintenance_margin(st.brackets, abs(position.amount) * st.mark_price)
        return total

    def _pool_terms(
        self, st: _Symbol, positions: Sequence[PositionState]
    ) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
        terms = []
        for position in positions:
            if position.amount:
                tier = bracket_for(st.brackets, abs(position.amount) * st.mark_price)
                terms.append((position.amount, position.entry_price, tier.maint_margin_ratio, tier.cum))
        return terms

    def _liquidation_levels(self, st: _Symbol, only: PositionState | None = None) -> LiquidationLevel | None:
        """Liquidation level of the pool holding ``only`` (or of the symbol's cross positions)."""
        if st.margin_type is MarginType.CROSSED:
            return liquidation_level(self._cross_collateral(st), self._pool_terms(st, list(st.positions.values())))
        if only is None or not only.amount:
            return None
        return liquidation_level(only.isolated_wallet, self._pool_terms(st, [only]))

    def _liquidate_on_path(self, st: _Symbol, path: tuple[Decimal, ...], start: PathKey, end: PathKey | None,
                           low: Decimal, high: Decimal) -> None:
        """Liquidate every pool of this symbol whose level the path reaches between ``start`` and ``end``."""
        while st.exposed:
            earliest: tuple[PathKey, PositionState | None] | None = None
            pools: list[PositionState | None] = [None] if st.margin_type is MarginType.CROSSED else \
                [p for p in st.positions.values() if p.amount]
            for pool in pools:
                level = self._liquidation_levels(st, pool)
                if level is None:
                    continue
                key = start if level.immediate else first_reach(path, level.price, level.falling, start=start)
                if key is not None and (end is None or key <= end) and (earliest is None or key < earliest[0]):
                    earliest = (key, pool)
            if earliest is None:
                return
            key, pool = earliest
            price = price_at(path, key)
            if pool is None:
                self._liquidate_cross(st, price, low, high)
            else:
                self._liquidate_position(st, pool, price, low, high)
            start = key

    def _liquidate_underwater(self) -> None:
        """Point check at the current marks: liquidate the cross pool or isolated positions below maintenance."""
        cross_exposed = False
        for st in list(self._symbols.values()):
            if not st.exposed or not st.has_candle:
                continue
            if st.margin_type is MarginType.CROSSED:
                cross_exposed = True
                continue
            for position in list(st.positions.values()):
                if position.amount:
                    size = abs(position.amount) * st.mark_price
                    if position.isolated_wallet + position.unrealized_pnl(st.mark_price) <= \
                            maintenance_margin(st.brackets, size):
                        self._liquidate_position(st, position, st.last_price, st.last_low, st.last_high)
        if cross_exposed and self._cross_collateral(None) <= 0:
            first = next(st for st in self._symbols.values()
                         if st.exposed and st.has_candle and st.margin_type is MarginType.CROSSED)
            self._liquidate_cross(first, first.last_price, first.last_low, first.last_high)

    def _liquidate_cross(self, st: _Symbol, price: Decimal, low: Decimal, high: Decimal) -> None:
        """Close every cross position: this symbol's at ``price``, the others at their last price."""
        for other in list(self._symbols.values()):
            if not other.exposed or other.margin_type is not MarginType.CROSSED:
                continue
            for position in list(other.positions.values()):
                if position.amount:
                    if other is st:
                        self._liquidate_position(other, position, price, low, high)
                    else:
                        self._liquidate_position(other, position, other.last_price, other.last_low, other.last_high)

    def _liquidate_position(self, st: _Symbol, position: PositionState, price: Decimal, low: Decimal,
                            high: Decimal) -> None:
        """Close one position with a LIQUIDATION order (clientOrderId autoclose-<n>), charging the clearance fee
        out of what margin is left; then cancel the symbol's open orders, as Binance does."""
        for working in list(st.open_orders.values()):
            self._finish(st, working, OrderStatus.CANCELED, ExecutionType.CANCELED)
        amount = position.amount
        side = Side.SELL if amount > 0 else Side.BUY
        quantity = abs(amount)
        fill_price = round_to_tick(price, st.tick, up=side is Side.BUY)
        fill_price = low if fill_price < low else high if fill_price > high else fill_price
        gross = (fill_price - position.entry_price) * amount
        if st.margin_type is MarginType.ISOLATED:
            cushion = position.isolated_wallet + gross
        else:  # cross margin balance once this position is closed
            cushion = self._cross_wallet() + gross + self._cross_unrealized(exclude=position)
        fee = to_wallet(min(fill_price * quantity * st.liquidation_fee_rate, cushion if cushion > 0 else ZERO))
        if fee < 0:
            fee = ZERO
        now = self._clock.now_ms()
        order = Order(st.name, self._next_order_id, f"autoclose-{self._next_liquidation}", side,
                      OrderType.LIQUIDATION, OrderStatus.NEW, quantity, fill_price, TimeInForce.IOC,
                      position.position_side, True, False, ZERO, ZERO, ZERO, ZERO, WorkingType.CONTRACT_PRICE,
                      now, now)
        self._next_order_id += 1
        self._next_liquidation += 1
        self._seq += 1
        working = _Working(order, OrderType.LIQUIDATION, self._seq, 0, True)
        st.orders[order.order_id] = working
        st.latest_by_client[order.client_order_id] = working
        self._fill(st, working, quantity, fill_price, maker=False, execution=ExecutionType.CALCULATED,
                   commission=fee)
