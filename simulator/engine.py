"""The simulated Binance USD-M Futures exchange: its public calls and the matching core.

One in-process object plays the exchange for sim mode and backtests (and sits behind the wire-compatible server).
It takes closed 1m candles and mark prices in, accepts and rejects orders with Binance's codes, fills them by
the model in ``simulator.matching``, keeps the account by ``simulator.margin`` (margin, liquidation) and
``simulator.account`` (positions, brackets), runs conditional orders by ``simulator.conditional``, and pushes
every change to listeners as a user-data-stream event (``simulator.events``). It never reads the wall clock:
time comes from the injected ``Clock``. Its data types are in ``simulator.records``, its saved state in
``simulator.state``. The rules, and where they differ from Binance, are in docs/simulator.md.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator import codes, conditional, events, rest_shapes, typed_events
from simulator.account import LeverageBracket, PositionState, default_brackets, max_notional_for, to_wallet
from simulator.exchange_info import liquidation_fee_rates, load_exchange_info, load_leverage_brackets
from simulator.margin import MarginAccount
from simulator.matching import (
    PATH_START,
    PathKey,
    average_impact,
    candle_path,
    first_reach,
    marginal_impact,
    price_at,
    taker_price,
    volume_cap,
)
from simulator.records import (
    DAY_MS,
    HOUR_MS,
    AccountState,
    AlgoOrder,
    OrderIndex,
    PositionRisk,
    Quote,
    SimConfig,
    SymbolState,
    WorkingAlgo,
    WorkingOrder,
    algo_copy,
    order_copy,
)
from simulator.state import (
    STATE_FORMAT,
    STATE_VERSION,
    StateError,
    decode,
    encode,
    load_symbol_state,
    read_state_file,
    referred,
    require,
    symbol_state,
    write_state_file,
)
from utils.binance_parse import parse_user_event
from utils.clock import Clock
from utils.domain import (
    ZERO,
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

__all__ = ["AccountState", "AlgoOrder", "PositionRisk", "SimConfig", "SimExchange"]

USDT = "USDT"
_CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")

# What snapshot() keeps of the account, by snapshot key: (owner, attribute, type).
_ACCOUNT_STATE: dict[str, tuple[str, str, Any]] = {
    "wallet_balance": ("margin", "wallet", Decimal), "deposits": ("margin", "deposits", Decimal),
    "realized_pnl": ("margin", "realized", Decimal), "fees_paid": ("margin", "fees", Decimal),
    "funding_total": ("margin", "funding", Decimal), "insurance_cleared": ("margin", "insurance_cleared", Decimal),
    "update_time": ("margin", "update_time", int),
    "dual_side_position": ("margin", "dual_side", bool),
    "next_order_id": ("exchange", "_next_order_id", int), "next_trade_id": ("exchange", "_next_trade_id", int),
    "next_algo_id": ("exchange", "_next_algo_id", int),
    "next_liquidation_id": ("exchange", "_next_liquidation", int), "sequence": ("exchange", "_seq", int),
}


class SimExchange:
    """A Binance USD-M Futures exchange for one USDT-margined account, driven by candles, mark prices and a clock."""

    def __init__(
        self,
        symbols: Mapping[str, SymbolFilters],
        *,
        clock: Clock,
        config: SimConfig = SimConfig(),
        initial_balance: Decimal = Decimal("10000"),
        first_order_id: int = 1,
        first_trade_id: int = 1,
        first_algo_id: int = 1,
    ) -> None:
        """``first_*_id``: where the id counters start, so that a fresh account kept in a database that already
        holds ids from an older account never repeats one."""
        for name, first in (("first_order_id", first_order_id), ("first_trade_id", first_trade_id),
                            ("first_algo_id", first_algo_id)):
            if isinstance(first, bool) or not isinstance(first, int) or first < 1:
                raise ValueError(f"{name} must be a positive integer, got {first!r}")
        self._clock = clock
        self._config = config
        self._maker_fee = config.maker_fee_rate
        self._taker_fee = config.taker_fee_rate
        self._slippage = config.slippage_fraction
        self._impact = config.impact_fraction
        self._impact_bound = self._impact * config.max_volume_fraction.sqrt()  # at the full volume cap
        self._fraction = config.max_volume_fraction
        self._strict = not config.fill_on_touch
        self._symbols: dict[str, SymbolState] = {}
        shipped = load_leverage_brackets() if config.shipped_leverage_brackets else {}
        for name, filters in symbols.items():
            rate = config.maintenance_margin_rate.get(name)
            brackets = config.leverage_brackets.get(name) or shipped.get(name)
            if brackets:
                if rate is not None:
                    brackets = [LeverageBracket(t.bracket, t.initial_leverage, t.notional_cap, t.notional_floor,
                                                rate, ZERO) for t in brackets]
            else:
                brackets = default_brackets(filters, rate)
            hours = config.funding_interval_hours.get(name, config.default_funding_interval_hours)
            state = SymbolState(filters, brackets, config.default_leverage,
                                config.liquidation_fee_rate.get(name, config.default_liquidation_fee_rate),
                                config.default_funding_rate, hours * HOUR_MS)
            state.positions[PositionSide.BOTH] = PositionState(name, PositionSide.BOTH)
            self._symbols[name] = state
        self._margin = MarginAccount(self._symbols, initial_balance, clock.now_ms())
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._pending: deque[Any] = deque()  # wire dicts, or parsed events after deliver_typed_events()
        self._typed = False
        self._flushing = False
        self._rng = random.Random(config.seed)
        self._next_order_id = first_order_id
        self._next_trade_id = first_trade_id
        self._next_algo_id = first_algo_id
        self._next_liquidation = 1
        self._seq = 0
        self._algo_orders: OrderIndex[AlgoOrder] = OrderIndex()  # every conditional order (GET /algoOrder)
        self._open_algos: OrderIndex[WorkingAlgo] = OrderIndex()  # the open ones, every symbol

    @classmethod
    def from_exchange_info(
        cls,
        document: Mapping[str, Any] | None = None,
        *,
        clock: Clock,
        config: SimConfig = SimConfig(),
        initial_balance: Decimal = Decimal("10000"),
        first_order_id: int = 1,
        first_trade_id: int = 1,
        first_algo_id: int = 1,
    ) -> SimExchange:
        """An exchange for every symbol of an exchangeInfo document (default: the shipped one), taking each
        symbol's liquidation clearance fee from it unless ``config`` sets one."""
        document = document if document is not None else load_exchange_info()
        rates = {**liquidation_fee_rates(document), **config.liquidation_fee_rate}
        return cls(parse_exchange_info(document), clock=clock,
                   config=dataclasses.replace(config, liquidation_fee_rate=rates), initial_balance=initial_balance,
                   first_order_id=first_order_id, first_trade_id=first_trade_id, first_algo_id=first_algo_id)

    # ==================================================================================== state snapshot
    def move_ids_above(self, *, order_id: int, trade_id: int) -> None:
        """Let the next order, conditional-order and trade ids be above these (a restored account whose database
        recorded ids its last save had not reached yet, e.g. after a crash): an id never repeats."""
        self._next_order_id = max(self._next_order_id, order_id + 1)
        self._next_algo_id = max(self._next_algo_id, order_id + 1)
        self._next_trade_id = max(self._next_trade_id, trade_id + 1)

    def snapshot(self) -> dict[str, Any]:
        """Everything the exchange holds, as plain JSON-able data (Decimals as exact strings): configuration,
        filters, account, id counters, the seeded client-id generator, and per symbol its prices and candle
        state, funding, leverage and margin type, positions, every order (open or not), conditional orders
        and trades. ``SimExchange.restore`` rebuilds an exchange that carries on exactly as this one would.
        Listeners are not part of the state."""
        if self._pending or self._flushing:
            raise RuntimeError("snapshot() called while events are being delivered; take it after the call "
                               "that produced them has returned")
        version, internal, gauss = self._rng.getstate()
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "time": self._clock.now_ms(),
            "config": encode(self._config),
            "filters": {name: encode(st.filters) for name, st in self._symbols.items()},
            "account": {key: encode(getattr(self._margin if owner == "margin" else self, attribute))
                        for key, (owner, attribute, _) in _ACCOUNT_STATE.items()},
            "client_id_generator": [version, list(internal), gauss],
            "symbols": {name: symbol_state(st) for name, st in self._symbols.items()},
            "algo_orders": [encode(algo) for algo in self._algo_orders.by_id.values()],
            "algo_by_client": {client_id: algo.algo_id for client_id, algo in self._algo_orders.by_client.items()},
            "open_algo_by_client": {client_id: working.algo.algo_id
                                    for client_id, working in self._open_algos.by_client.items()},
        }

    @classmethod
    def restore(cls, snapshot: Mapping[str, Any], *, clock: Clock) -> SimExchange:
        """An exchange rebuilt from ``snapshot()``'s output (no listeners). The clock must not be behind the
        moment of the snapshot. A malformed document raises ``StateError`` naming the field."""
        if require(snapshot, "format", "state") != STATE_FORMAT:
            raise StateError(f"state: format is {snapshot['format']!r}, expected {STATE_FORMAT!r}")
        if require(snapshot, "version", "state") != STATE_VERSION:
            raise StateError(f"state: version {snapshot['version']!r} is not supported (this engine reads "
                             f"version {STATE_VERSION})")
        taken_at = decode(int, require(snapshot, "time", "state"), "state.time")
        if clock.now_ms() < taken_at:
            raise StateError(f"state was saved at {taken_at} but the clock is at {clock.now_ms()}: set the clock "
                             "to the snapshot's time or later, or event times would go backwards")
        config = decode(SimConfig, require(snapshot, "config", "state"), "state.config")
        filters = decode(dict[str, SymbolFilters], require(snapshot, "filters", "state"), "state.filters")
        exchange = cls(filters, clock=clock, config=config, initial_balance=ZERO)
        exchange._load_state(snapshot)
        return exchange

    def save_state(self, path: str | Path) -> None:
        """Write ``snapshot()`` to ``path`` as JSON, atomically (temporary file, fsync, rename)."""
        write_state_file(path, self.snapshot())

    @classmethod
    def load_state(cls, path: str | Path, *, clock: Clock) -> SimExchange:
        """``restore`` from a file written by ``save_state``."""
        return cls.restore(read_state_file(path), clock=clock)

    def _load_state(self, snapshot: Mapping[str, Any]) -> None:
        account = require(snapshot, "account", "state")
        for key, (owner, attribute, kind) in _ACCOUNT_STATE.items():
            setattr(self._margin if owner == "margin" else self, attribute,
                    decode(kind, require(account, key, "state.account"), f"state.account.{key}"))
        generator = require(snapshot, "client_id_generator", "state")
        try:
            version, internal, gauss = generator
            self._rng.setstate((version, tuple(internal), gauss))
        except (TypeError, ValueError):
            raise StateError("state.client_id_generator: not a saved random generator state") from None
        for index, data in enumerate(require(snapshot, "algo_orders", "state")):
            algo = decode(AlgoOrder, data, f"state.algo_orders[{index}]")
            self._algo_orders.by_id[algo.algo_id] = algo
        algos = self._algo_orders.by_id
        self._algo_orders.by_client = {client_id: referred(algos, algo_id, "state.algo_by_client")
                                       for client_id, algo_id in require(snapshot, "algo_by_client", "state").items()}
        symbols = require(snapshot, "symbols", "state")
        if set(symbols) != set(self._symbols):
            raise StateError(f"state.symbols: holds {sorted(symbols)} but the filters list {sorted(self._symbols)}")
        open_algos: dict[int, WorkingAlgo] = {}
        for name, st in self._symbols.items():
            for working in load_symbol_state(st, symbols[name], f"state.symbols.{name}", algos):
                open_algos[working.algo.algo_id] = working
        self._open_algos.by_id = open_algos
        self._open_algos.by_client = {
            client_id: referred(open_algos, algo_id, "state.open_algo_by_client")
            for client_id, algo_id in require(snapshot, "open_algo_by_client", "state").items()}

    # ================================================================================================ listeners
    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Receive every user-data-stream event (treat the dicts as read-only; one dict goes to every listener)."""
        self._listeners.append(callback)

    def deliver_typed_events(self) -> None:
        """From now on, listeners get the events as the bot's parsed types (``utils.binance_parse.UserEvent``),
        built directly (``simulator.typed_events``) instead of wire dicts: for an in-process shell, which would
        only parse the dicts again. Not for the wire server."""
        self._typed = True

    def _flush(self) -> None:
        """Deliver queued events in order, once the change that produced them is complete."""
        if self._flushing:
            return
        self._flushing = True
        try:
            pending = self._pending
            while pending:
                event = pending.popleft()
                if self._typed and event.__class__ is dict:  # a rare event without a typed builder
                    event = parse_user_event(event)
                for listener in self._listeners:
                    listener(event)
        finally:
            self._flushing = False

    # ========================================================================================= account config
    @property
    def dual_side_position(self) -> bool:
        return self._margin.dual_side

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
        notional = self._margin.position_notional(st)
        if st.margin_type is MarginType.ISOLATED and st.exposed and leverage < st.leverage:
            raise codes.reject(codes.ISOLATED_LEVERAGE_REDUCTION)
        max_notional = max_notional_for(st.brackets, leverage)
        if notional > max_notional:
            raise codes.reject(codes.MAX_LEVERAGE_RATIO)
        previous = st.leverage
        st.leverage = leverage
        if self._margin.available_balance() < 0 and leverage < previous:
            st.leverage = previous
            raise codes.reject(codes.MIN_LEVERAGE_RATIO)
        now = self._clock.now_ms()
        if self._listeners:
            self._pending.append(events.account_config_update_leverage(time=now, symbol=symbol, leverage=leverage))
            self._flush()
        return rest_shapes.leverage_response(symbol, leverage, max_notional)

    def leverage_brackets(self, symbol: str) -> tuple[LeverageBracket, ...]:
        """The symbol's tiers, lowest notional first (GET /fapi/v1/leverageBracket: rest_shapes.leverage_brackets)."""
        return self._symbol(symbol).brackets

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
        if st.open.by_id or st.algos:
            raise codes.reject(codes.MARGIN_TYPE_OPEN_ORDERS)
        if st.exposed:
            raise codes.reject(codes.MARGIN_TYPE_POSITION)
        st.margin_type = margin_type

    def set_position_mode(self, dual_side: bool) -> None:
        """POST /fapi/v1/positionSide/dual: True = hedge mode (LONG/SHORT), False = one-way (BOTH)."""
        dual_side = bool(dual_side)
        if dual_side == self._margin.dual_side:
            raise codes.reject(codes.NO_NEED_TO_CHANGE_POSITION_SIDE)
        if any(st.open.by_id or st.algos for st in self._symbols.values()):
            raise codes.reject(codes.POSITION_SIDE_OPEN_ORDERS)
        if any(st.exposed for st in self._symbols.values()):
            raise codes.reject(codes.POSITION_SIDE_POSITION)
        self._margin.dual_side = dual_side
        sides = (PositionSide.LONG, PositionSide.SHORT) if dual_side else (PositionSide.BOTH,)
        for st in self._symbols.values():
            st.positions = {side: PositionState(st.name, side) for side in sides}

    def deposit(self, amount: Decimal, asset: str = USDT) -> None:
        """Add funds to the wallet (pushes ACCOUNT_UPDATE with reason DEPOSIT)."""
        if asset != USDT:
            raise BinanceError(-1126, "This asset is not supported.")
        if not isinstance(amount, Decimal) or amount <= 0:
            raise BinanceError(-4055, "Amount must be positive.")
        self._margin.wallet += amount
        self._margin.deposits += amount
        now = self._clock.now_ms()
        self._margin.update_time = now
        if self._listeners:
            self._pending.append(events.account_update(
                time=now, reason="DEPOSIT",
                balances=[events.balance_entry(self._margin.wallet, self._margin.cross_wallet(), amount)],
                positions=[]))
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
        client_order_id = self._client_id(st.open.by_client, client_order_id)
        if order_type is OrderType.MARKET and not st.has_candle:
            raise codes.reject(codes.UNABLE_TO_FILL)
        violation = st.filters.validate(
            order_type=order_type, quantity=quantity, price=price, mark_price=st.mark_price,
            reduce_only=closing, open_orders=len(st.open.by_id), side=side)
        if violation is not None:
            raise BinanceError(violation.code, violation.message)
        position = st.positions[position_side]
        if closing:
            closable = position.closable(side)
            if closable == 0 or (self._margin.dual_side and not reduce_only
                                 and quantity + self._pending_close(st, position_side, side) > closable):
                raise codes.reject(codes.REDUCE_ONLY_REJECT)
        buying = side is Side.BUY
        if order_type is OrderType.MARKET:
            reference = self._check_market_percent_price(st, buying, quantity)
            marketable = True
        else:
            if price is None:
                raise codes.mandatory("price")
            reference = price
            marketable = st.has_candle and (price >= st.last_price if buying else price <= st.last_price)
            if time_in_force is TimeInForce.GTX and marketable:
                raise codes.reject(codes.GTX_REJECT)
            if time_in_force is TimeInForce.FOK:
                fillable = self._room(st, st.last_volume, buying) if marketable else ZERO
                if closing:
                    fillable = min(fillable, position.closable(side))
                if quantity > fillable:
                    raise codes.reject(codes.FOK_REJECT)
        margin_direction = 0 if closing else (1 if buying else -1)
        if margin_direction:
            self._margin.check_margin(st, margin_direction, quantity * reference)
        now = self._clock.now_ms()
        order = Order(symbol, self._next_order_id, client_order_id, side, order_type, OrderStatus.NEW, quantity,
                      price if price is not None else ZERO, time_in_force, position_side, reduce_only, False,
                      ZERO, ZERO, ZERO, ZERO, WorkingType.CONTRACT_PRICE, now, now)
        self._next_order_id += 1
        self._seq += 1
        working = WorkingOrder(order, order_type, self._seq, margin_direction, closing)
        self._accept(st, working, marketable, (st.last_price, st.last_low, st.last_high, st.last_volume))
        if self._pending:
            self._flush()
        return order_copy(order)

    def cancel_order(self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None) -> Order:
        """DELETE /fapi/v1/order by orderId (wins when both are given) or origClientOrderId."""
        st = self._symbol(symbol)
        working = st.open.find(order_id, client_order_id, "orderId", "origClientOrderId")
        if working is None:
            raise codes.reject(codes.UNKNOWN_ORDER)
        self._finish(st, working, OrderStatus.CANCELED, ExecutionType.CANCELED)
        self._flush()
        return order_copy(working.order)

    def cancel_all_orders(self, symbol: str) -> list[Order]:
        """DELETE /fapi/v1/allOpenOrders: cancels the symbol's open (non-algo) orders; returns them."""
        st = self._symbol(symbol)
        cancelled = list(st.open.by_id.values())
        for working in cancelled:
            self._finish(st, working, OrderStatus.CANCELED, ExecutionType.CANCELED)
        self._flush()
        return [order_copy(working.order) for working in cancelled]

    def query_order(self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None) -> Order:
        """GET /fapi/v1/order: open, filled, cancelled or expired (an unfilled closed order for 3 days only)."""
        working = self._symbol(symbol).orders.find(order_id, client_order_id, "orderId", "origClientOrderId")
        if working is None:
            raise codes.reject(codes.NO_SUCH_ORDER)
        order = working.order
        if self._forgotten(order, self._clock.now_ms()):
            raise codes.reject(codes.NO_SUCH_ORDER)
        return order_copy(order)

    def _forgotten(self, order: Order, now: int) -> bool:
        """A cancelled or expired order with no fill is gone 3 days (its retention) after it was created."""
        return (order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and order.executed_quantity == 0
                and now - order.create_time > self._config.order_retention_ms)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """GET /fapi/v1/openOrders, oldest first."""
        states = [self._symbol(symbol)] if symbol is not None else list(self._symbols.values())
        return [order_copy(w.order) for st in states for w in st.open.by_id.values()]

    def order_orig_type(self, symbol: str, order_id: int) -> OrderType:
        """Binance ``origType`` of an order (a triggered conditional keeps its algo type)."""
        working = self._symbol(symbol).orders.by_id.get(order_id)
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
        conditional.check_type_and_close_position(order_type, trigger_price, quantity, close_position, reduce_only)
        self._check_position_side(position_side, side, reduce_only)
        if close_position and self._margin.dual_side and (
                (position_side is PositionSide.LONG) == (side is Side.BUY)):
            raise codes.reject(codes.REDUCE_ONLY_REJECT)
        quantity, price = conditional.check_prices_and_quantity(
            st.filters, order_type=order_type, trigger_price=trigger_price, quantity=quantity, price=price,
            close_position=close_position, reduce_only=reduce_only, time_in_force=time_in_force)
        conditional.check_book_limits(st, order_type=order_type, side=side, position_side=position_side,
                                      close_position=close_position)
        client_algo_id = self._client_id(self._open_algos.by_client, client_algo_id)
        reference = conditional.working_price(st, working_type)
        if reference and conditional.trigger_reached(order_type, side, trigger_price, reference):
            raise codes.reject(codes.WOULD_IMMEDIATELY_TRIGGER)
        now = self._clock.now_ms()
        algo = AlgoOrder(self._next_algo_id, client_algo_id, symbol, side, order_type, AlgoStatus.NEW,
                         trigger_price, quantity, price, time_in_force, position_side, reduce_only, close_position,
                         working_type, now, now)
        self._next_algo_id += 1
        self._seq += 1
        working = WorkingAlgo(algo, self._seq)
        st.algos[algo.algo_id] = working
        self._algo_orders.add(algo.algo_id, client_algo_id, algo)
        self._open_algos.add(algo.algo_id, client_algo_id, working)
        self._algo_event(algo, now)
        self._flush()
        return algo_copy(algo)

    def cancel_algo_order(self, *, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        """DELETE /fapi/v1/algoOrder by algoId or clientAlgoId (-2011 when not open)."""
        found = self._open_algos.find(algo_id, client_algo_id, "algoId", "clientAlgoId")
        if found is None or found.algo.status is not AlgoStatus.NEW:
            raise codes.reject(codes.UNKNOWN_ORDER)
        algo = found.algo
        self._close_algo(self._symbols[algo.symbol], algo, AlgoStatus.CANCELED)
        self._flush()
        return algo_copy(algo)

    def cancel_all_algo_orders(self, symbol: str) -> list[AlgoOrder]:
        """DELETE /fapi/v1/algoOpenOrders for one symbol."""
        st = self._symbol(symbol)
        cancelled = [w.algo for w in st.algos.values() if w.algo.status is AlgoStatus.NEW]
        for algo in cancelled:
            self._close_algo(st, algo, AlgoStatus.CANCELED)
        self._flush()
        return [algo_copy(algo) for algo in cancelled]

    def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        """GET /fapi/v1/openAlgoOrders, oldest first."""
        states = [self._symbol(symbol)] if symbol is not None else list(self._symbols.values())
        return [algo_copy(w.algo) for st in states for w in st.algos.values()]

    def query_algo_order(self, *, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        """GET /fapi/v1/algoOrder (-2013 when unknown)."""
        algo = self._algo_orders.find(algo_id, client_algo_id, "algoId", "clientAlgoId")
        if algo is None:
            raise codes.reject(codes.NO_SUCH_ORDER)
        return algo_copy(algo)

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
        if st.open.by_id or st.algos or st.exposed:
            self._match_candle(st, candle)
        st.has_candle = True
        st.last_price = candle.close
        st.last_low = candle.low
        st.last_high = candle.high
        st.last_volume = candle.volume
        st.last_open_time = open_time
        st.bought = st.sold = ZERO  # a new period: orders sent from now on take from this candle's volume
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
                        if conditional.trigger_reached(algo.order_type, algo.side, algo.trigger_price,
                                                       mark.mark_price):
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
        return self._margin.state()

    def position_risk(self, symbol: str | None = None) -> list[PositionRisk]:
        """Per-position risk figures (GET /fapi/v3/positionRisk lists symbols with a position or open orders)."""
        states = [self._symbol(symbol)] if symbol is not None else list(self._symbols.values())
        return self._margin.position_risk(states, every_symbol=symbol is not None)

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
        orders = [w.order for w in st.orders if not self._forgotten(w.order, now)]
        if order_id is not None:
            return [order_copy(o) for o in orders if o.order_id >= order_id][:limit]
        if start_time is None and end_time is None:
            start_time = now - 7 * DAY_MS
        selected = [o for o in orders if (start_time is None or o.create_time >= start_time)
                    and (end_time is None or o.create_time <= end_time)]
        return [order_copy(o) for o in selected[-limit:]]

    def reach_levels(self, symbol: str) -> tuple[Decimal | None, Decimal | None, bool]:
        """Where the next candle of ``symbol`` can make this exchange act (for a shell that skips quiet candles).

        Returns ``(falling, rising, always)``: a candle whose low stays above ``falling`` and whose high stays
        below ``rising`` fills no resting order, triggers no conditional order and liquidates nothing (None: no
        such level); ``always`` is True when that cannot be said from this symbol's prices alone (a pool already
        below maintenance, or a cross position whose level moves with other symbols' marks). Funding times are
        the caller's to watch (``next_funding_time``).
        """
        st = self._symbol(symbol)
        falling: Decimal | None = None
        rising: Decimal | None = None

        def reach(price: Decimal, falls: bool) -> None:
            nonlocal falling, rising
            if falls:
                falling = price if falling is None or price > falling else falling
            else:
                rising = price if rising is None or price < rising else rising

        for working in st.open.by_id.values():
            reach(working.order.price, working.order.side is Side.BUY)
        for algo_working in st.algos.values():
            algo = algo_working.algo
            if algo.status is AlgoStatus.NEW:
                reach(algo.trigger_price, conditional.trigger_falls(algo.order_type, algo.side))
        if not st.exposed:
            return falling, rising, False
        if st.margin_type is MarginType.CROSSED:
            if any(other is not st and other.exposed and other.margin_type is MarginType.CROSSED
                   for other in self._symbols.values()):
                return falling, rising, True
            pools: list[PositionState | None] = [None]
        else:
            pools = [p for p in st.positions.values() if p.amount]
        for pool in pools:
            level = self._margin.liquidation_level(st, pool)
            if level is None:
                continue
            if level.immediate:
                return falling, rising, True
            reach(level.price, level.falling)
        return falling, rising, False

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
    def _symbol(self, symbol: str) -> SymbolState:
        st = self._symbols.get(symbol)
        if st is None:
            raise codes.reject(codes.INVALID_SYMBOL)
        return st

    def _check_position_side(self, position_side: PositionSide, side: Side, reduce_only: bool) -> bool:
        """Reject a position side that does not fit the mode; True when the order can only close."""
        if self._margin.dual_side:
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
    def _pending_close(st: SymbolState, position_side: PositionSide, side: Side) -> Decimal:
        """Unfilled quantity of open closing orders on a hedge-mode position."""
        return sum((w.order.quantity - w.order.executed_quantity for w in st.open.by_id.values()
                    if w.closing and w.order.position_side is position_side and w.order.side is side), ZERO)

    def _room(self, st: SymbolState, volume: Decimal, buying: bool) -> Decimal:
        """What the volume cap still lets executions on one side take from a candle that traded ``volume``."""
        room = volume_cap(volume, self._fraction, st.lot_step) - (st.bought if buying else st.sold)
        return room if room > 0 else ZERO

    @staticmethod
    def _take(st: SymbolState, buying: bool, quantity: Decimal) -> None:
        if buying:
            st.bought += quantity
        else:
            st.sold += quantity

    def _check_market_percent_price(self, st: SymbolState, buying: bool, quantity: Decimal) -> Decimal:
        """-4131 when the worst price a market order would trade at now passes its side's PERCENT_PRICE bound
        (a buy above mark x multiplierUp, a sell below mark x multiplierDown). Returns the price its margin is
        checked at: the last close moved by the slippage (Binance estimates it before the order walks the book)."""
        reference = taker_price(st.last_price, buying, self._slippage, st.tick, st.last_low, st.last_high)
        filters = st.filters
        if filters.multiplier_up and st.mark_price:
            low, high = filters.percent_price_bounds(st.mark_price)
            # The impact never exceeds its value at the full volume cap: only near a bound work out the walk.
            bound = self._impact_bound
            if (reference * (1 + bound) > high) if buying else (reference * (1 - bound) < low):
                taken = st.bought if buying else st.sold
                executable = min(quantity, self._room(st, st.last_volume, buying))
                worst = taker_price(st.last_price, buying, self._slippage, st.tick, st.last_low, st.last_high,
                                    marginal_impact(self._impact, taken + executable, st.last_volume))
                if worst > high if buying else worst < low:
                    raise codes.reject(codes.MARKET_ORDER_PERCENT_PRICE)
        return reference

    def _accept(self, st: SymbolState, working: WorkingOrder, marketable: bool, quote: Quote) -> None:
        """Record a validated order, execute what crosses now, and rest, expire or finish the rest."""
        order = working.order
        st.orders.add(order.order_id, order.client_order_id, working)
        st.open.add(order.order_id, order.client_order_id, working)
        if not marketable and order.time_in_force in (TimeInForce.GTC, TimeInForce.GTX):
            self._book(st, working)  # rests straight away: its NEW event already counts it in "b"/"a"
        working.taking = marketable
        if self._listeners:
            self._order_event(st, working, ExecutionType.NEW)
        if marketable:
            self._execute_now(st, working, quote)
        if order.status.is_open and not working.booked:
            tif = order.time_in_force
            if order.order_type is OrderType.MARKET or tif is TimeInForce.IOC or tif is TimeInForce.FOK:
                self._finish(st, working, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
            elif working.closing and st.positions[order.position_side].closable(order.side) == 0:
                self._finish(st, working, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
            else:
                self._book(st, working)

    def _execute_now(self, st: SymbolState, working: WorkingOrder, quote: Quote) -> None:
        """Take liquidity at ``quote`` (reference, low, high, volume) as a taker: at most what the volume cap leaves
        of ``volume``, at the reference moved by slippage and impact, never past a limit order's price."""
        order = working.order
        reference, low, high, volume = quote
        buying = order.side is Side.BUY
        quantity = order.quantity - order.executed_quantity
        if working.closing:
            closable = st.positions[order.position_side].closable(order.side)
            if closable < quantity:
                quantity = closable
        room = self._room(st, volume, buying)
        if room < quantity:
            quantity = room
        if quantity <= 0:
            return
        impact = average_impact(self._impact, st.bought if buying else st.sold, quantity, volume)
        price = taker_price(reference, buying, self._slippage, st.tick, low, high, impact)
        if order.order_type is not OrderType.MARKET:
            limit = order.price
            if buying and price > limit or not buying and price < limit:
                price = limit
        self._take(st, buying, quantity)
        self._fill(st, working, quantity, price, maker=False)

    # ================================================================================= book and execution
    def _book(self, st: SymbolState, working: WorkingOrder) -> None:
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

    def _unbook(self, st: SymbolState, working: WorkingOrder, quantity: Decimal) -> None:
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

    def _remove_open(self, st: SymbolState, working: WorkingOrder) -> None:
        order = working.order
        st.open.discard(order.order_id, order.client_order_id, working)
        working.booked = False
        if working.algo is not None:
            self._finish_algo(st, working)

    def _finish(self, st: SymbolState, working: WorkingOrder, status: OrderStatus, execution: ExecutionType) -> None:
        """Take an open order off the book as CANCELED or EXPIRED."""
        order = working.order
        if working.booked:
            self._unbook(st, working, order.quantity - order.executed_quantity)
        order.status = status
        order.update_time = self._clock.now_ms()
        if self._listeners:
            self._order_event(st, working, execution)
        self._remove_open(st, working)

    def _fill(self, st: SymbolState, working: WorkingOrder, quantity: Decimal, price: Decimal, *, maker: bool,
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
        self._margin.wallet += realized - commission
        self._margin.realized += realized
        self._margin.fees += commission
        self._margin.update_time = now
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
        if order.status is OrderStatus.FILLED and order.order_id in st.open.by_id:
            self._remove_open(st, working)
        return fill

    def _order_event(self, st: SymbolState, working: WorkingOrder, execution: ExecutionType,
                     last_quantity: Decimal = ZERO, last_price: Decimal = ZERO, commission: Decimal = ZERO,
                     trade_id: int = 0, maker: bool = False, realized: Decimal = ZERO) -> None:
        if self._typed:
            self._pending.append(typed_events.order_update(
                working.order, time=self._clock.now_ms(), execution=execution, last_quantity=last_quantity,
                last_price=last_price, commission=commission, trade_id=trade_id, maker=maker, realized_pnl=realized))
            return
        self._pending.append(events.order_trade_update(
            working.order, time=self._clock.now_ms(), execution_type=execution._value_,
            orig_type=working.orig_type._value_, last_quantity=last_quantity, last_price=last_price,
            commission=commission, trade_id=trade_id, maker=maker, realized_pnl=realized,
            bid_notional=st.bid_notional, ask_notional=st.ask_notional))

    def _account_event(self, reason: str, balance_change: Decimal,
                       positions: Sequence[tuple[SymbolState, PositionState]]) -> None:
        if self._typed:
            now = self._clock.now_ms()
            self._pending.append(typed_events.account_update(
                time=now, reason=reason, wallet=self._margin.wallet, cross_wallet=self._margin.cross_wallet(),
                balance_change=balance_change, positions=[typed_events.position(
                    symbol=st.name, amount=p.amount, entry_price=p.entry_price, break_even_price=p.break_even_price,
                    accumulated_realized=p.realized_pnl, unrealized_pnl=p.unrealized_pnl(st.mark_price),
                    margin_type=st.margin_type,
                    isolated_wallet=p.isolated_wallet if st.margin_type is MarginType.ISOLATED else ZERO,
                    position_side=p.position_side, time=now) for st, p in positions]))
            return
        self._pending.append(events.account_update(
            time=self._clock.now_ms(), reason=reason,
            balances=[events.balance_entry(self._margin.wallet, self._margin.cross_wallet(), balance_change)],
            positions=[events.position_entry(
                symbol=st.name, amount=p.amount, entry_price=p.entry_price, break_even_price=p.break_even_price,
                accumulated_realized=p.realized_pnl, unrealized_pnl=p.unrealized_pnl(st.mark_price),
                margin_type=st.margin_type._value_,
                isolated_wallet=p.isolated_wallet if st.margin_type is MarginType.ISOLATED else ZERO,
                position_side=p.position_side._value_) for st, p in positions]))

    # ============================================================================================ matching
    def _match_candle(self, st: SymbolState, candle: Candle) -> None:
        """Run everything that the candle's path reaches, in path order (see simulator.matching)."""
        path = candle_path(candle)
        open_time = candle.open_time
        strict = self._strict
        candidates: list[tuple[PathKey, int, WorkingOrder | WorkingAlgo]] = []
        for working in st.open.by_id.values():
            order = working.order
            if order.create_time <= open_time:  # a taking remainder takes on a touch: it is not queued
                key = first_reach(path, order.price, order.side is Side.BUY, strict=strict and not working.taking)
                if key is not None:
                    candidates.append((key, working.seq, working))
        feed = st.mark_from_feed
        for algo_working in st.algos.values():
            algo = algo_working.algo
            if (algo.status is AlgoStatus.NEW and algo.create_time <= open_time
                    and (algo.working_type is WorkingType.CONTRACT_PRICE or not feed)):
                key = first_reach(path, algo.trigger_price, conditional.trigger_falls(algo.order_type, algo.side))
                if key is not None:
                    candidates.append((key, algo_working.seq, algo_working))
        if not candidates and (feed or not st.exposed):
            return
        candidates.sort(key=lambda item: (item[0], item[1]))
        low, high, volume = candle.low, candle.high, candle.volume
        st.bought = st.sold = ZERO  # this candle's liquidity, shared by its resting fills and triggered orders
        previous = PATH_START
        for key, _, item in candidates:
            if not feed and st.exposed:
                self._liquidate_on_path(st, path, previous, key, low, high)
            previous = key
            if isinstance(item, WorkingOrder):
                order = item.order
                buying = order.side is Side.BUY
                room = self._room(st, volume, buying)
                if not order.status.is_open or room <= 0:
                    continue
                quantity = order.quantity - order.executed_quantity
                if item.closing:
                    closable = st.positions[order.position_side].closable(order.side)
                    if closable == 0:
                        self._finish(st, item, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
                        continue
                    quantity = min(quantity, closable)
                quantity = min(quantity, room)
                self._take(st, buying, quantity)
                # At its own limit, never better, even when the candle gapped past it; a marketable order's
                # remainder still takes (taker fee).
                self._fill(st, item, quantity, order.price, maker=not item.taking)
                if item.closing and order.status.is_open and \
                        st.positions[order.position_side].closable(order.side) == 0:
                    self._finish(st, item, OrderStatus.EXPIRED, ExecutionType.EXPIRED)
            elif item.algo.status is AlgoStatus.NEW:
                self._trigger(st, item.algo, (price_at(path, key), low, high, volume))
        if not feed and st.exposed:
            self._liquidate_on_path(st, path, previous, None, low, high)

    # ============================================================================================ algo flow
    def _algo_event(self, algo: AlgoOrder, now: int) -> None:
        algo.update_time = now
        if self._listeners:
            self._pending.append(typed_events.algo_update(algo, time=now) if self._typed else
                                 events.algo_update(algo, time=now))

    def _close_algo(self, st: SymbolState, algo: AlgoOrder, status: AlgoStatus, reason: str = "") -> None:
        algo.status = status
        algo.reject_reason = reason
        working = st.algos.pop(algo.algo_id, None)
        if working is not None:
            self._open_algos.discard(algo.algo_id, algo.client_algo_id, working)
        self._algo_event(algo, self._clock.now_ms())

    def _trigger(self, st: SymbolState, algo: AlgoOrder, quote: Quote) -> None:
        """The trigger price was reached: send the order to the matching engine at ``quote``."""
        now = self._clock.now_ms()
        algo.status = AlgoStatus.TRIGGERING
        algo.trigger_time = now
        self._algo_event(algo, now)
        side = algo.side
        position_side = algo.position_side
        closing = conditional.closes_only(algo, self._margin.dual_side)
        quantity = algo.quantity
        if closing:
            closable = st.positions[position_side].closable(side)
            if algo.close_position:
                quantity = closable
            if closable == 0:
                self._close_algo(st, algo, AlgoStatus.CANCELED, codes.ALGO_REDUCE_ONLY_REASON)
                return
        is_market = algo.order_type in conditional.MARKET_ALGO_TYPES
        order_type = OrderType.MARKET if is_market else OrderType.LIMIT
        buying = side is Side.BUY
        reference = quote[0]
        fill_reference = taker_price(reference, buying, self._slippage, st.tick, quote[1], quote[2])
        margin_direction = 0 if closing else (1 if buying else -1)
        try:
            if algo.client_algo_id in st.open.by_client:
                raise codes.reject(codes.DUPLICATED_CLIENT_ORDER_ID)
            if margin_direction:
                self._margin.check_margin(st, margin_direction,
                                          quantity * (fill_reference if is_market else algo.price))
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
        working = WorkingOrder(order, algo.order_type, self._seq, margin_direction, closing, algo)
        algo.actual_order_id = order.order_id
        algo.actual_order_type = order_type.value
        # Status stays TRIGGERING while the order executes; Binance reports TRIGGERED after the order's own
        # events (and FINISHED once the order is done), so _finish_algo announces both when it is done at once.
        self._accept(st, working, marketable, quote)
        if algo.status is AlgoStatus.TRIGGERING:
            algo.status = AlgoStatus.TRIGGERED
            self._algo_event(algo, now)

    def _finish_algo(self, st: SymbolState, working: WorkingOrder) -> None:
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
    def _settle_funding(self, st: SymbolState, until: int, check_liquidation: bool = True) -> None:
        """Pay or receive funding for every funding time up to ``until``, at the current mark and rate."""
        while st.next_funding_time and st.next_funding_time <= until:
            if st.exposed and st.mark_price:
                isolated = st.margin_type is MarginType.ISOLATED
                for position in st.positions.values():
                    if not position.amount:
                        continue
                    amount = to_wallet(-position.amount * st.mark_price * st.funding_rate)
                    self._margin.wallet += amount
                    self._margin.funding += amount
                    if isolated:
                        position.isolated_wallet += amount
                    self._margin.update_time = self._clock.now_ms()
                    if self._listeners:
                        self._account_event("FUNDING_FEE", amount, [(st, position)] if isolated else [])
            st.next_funding_time += st.funding_interval_ms
        if check_liquidation and st.exposed:
            self._liquidate_underwater()

    def _liquidate_on_path(self, st: SymbolState, path: tuple[Decimal, ...], start: PathKey, end: PathKey | None,
                           low: Decimal, high: Decimal) -> None:
        """Liquidate every pool of this symbol whose level the path reaches between ``start`` and ``end``."""
        while st.exposed:
            earliest = self._margin.first_liquidation(st, path, start, end)
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
                if position.amount and self._margin.isolated_underwater(st, position):
                    self._liquidate_position(st, position, st.last_price, st.last_low, st.last_high)
        if cross_exposed and self._margin.cross_underwater():
            first = next(st for st in self._symbols.values()
                         if st.exposed and st.has_candle and st.margin_type is MarginType.CROSSED)
            self._liquidate_cross(first, first.last_price, first.last_low, first.last_high)

    def _liquidate_cross(self, st: SymbolState, price: Decimal, low: Decimal, high: Decimal) -> None:
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
        deficit = -self._margin.cross_wallet()
        if deficit > 0:
            self._insurance_clear(deficit)

    def _liquidate_position(self, st: SymbolState, position: PositionState, price: Decimal, low: Decimal,
                            high: Decimal) -> None:
        """Close one position with a LIQUIDATION order (clientOrderId autoclose-<n>), charging the clearance fee
        out of what margin is left, after cancelling the symbol's open orders, as Binance does. An isolated pool
        never ends below zero: a rounding crumb past its margin is cleared by the insurance fund."""
        for working in list(st.open.by_id.values()):
            self._finish(st, working, OrderStatus.CANCELED, ExecutionType.CANCELED)
        side = Side.SELL if position.amount > 0 else Side.BUY
        quantity = abs(position.amount)
        fill_price, fee = self._margin.liquidation_fill(st, position, price, low, high)
        now = self._clock.now_ms()
        order = Order(st.name, self._next_order_id, f"autoclose-{self._next_liquidation}", side,
                      OrderType.LIQUIDATION, OrderStatus.NEW, quantity, fill_price, TimeInForce.IOC,
                      position.position_side, True, False, ZERO, ZERO, ZERO, ZERO, WorkingType.CONTRACT_PRICE,
                      now, now)
        self._next_order_id += 1
        self._next_liquidation += 1
        self._seq += 1
        working = WorkingOrder(order, OrderType.LIQUIDATION, self._seq, 0, True)
        st.orders.add(order.order_id, order.client_order_id, working)
        margin_before = position.isolated_wallet if st.margin_type is MarginType.ISOLATED else None
        fill = self._fill(st, working, quantity, fill_price, maker=False, execution=ExecutionType.CALCULATED,
                          commission=fee)
        if margin_before is not None and margin_before + fill.realized_pnl - fee < 0:
            self._insurance_clear(-(margin_before + fill.realized_pnl - fee))

    def _insurance_clear(self, amount: Decimal) -> None:
        """The insurance fund covers a liquidated pool's deficit: ACCOUNT_UPDATE reason INSURANCE_CLEAR."""
        self._margin.wallet += amount
        self._margin.insurance_cleared += amount
        now = self._clock.now_ms()
        self._margin.update_time = now
        if self._listeners:
            self._account_event("INSURANCE_CLEAR", amount, [])
