"""Properties over random sequences of orders and real candles: the books balance exactly, positions are the sum
of their fills, and nothing fills at a price the model does not allow (inside its candle, moved at most by the
impact of the volume cap; a resting order at its own limit; an isolated liquidation at most at bankruptcy)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from simulator.account import parse_leverage_brackets, to_wallet
from simulator.engine import SimConfig, SimExchange
from simulator.matching import candle_path, first_reach, price_at, round_to_tick, taker_price
from utils.clock import SimulatedClock
from utils.domain import Candle, MarginType, MarkPrice, OrderType, PositionSide, Side, TimeInForce, WorkingType
from utils.errors import BinanceError

pytestmark = pytest.mark.shared_data

SYMBOLS = ("BTCUSDT", "LTCUSDT")
STEP = {"BTCUSDT": D("0.001"), "LTCUSDT": D("0.001")}
TICK = {"BTCUSDT": D("0.1"), "LTCUSDT": D("0.01")}
BRACKETS = parse_leverage_brackets([{"symbol": "BTCUSDT", "brackets": [
    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004,
     "cum": 0},
    {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 50000,
     "maintMarginRatio": 0.005, "cum": 50}]}])
PROPERTY_SETTINGS = settings(max_examples=150, stateful_step_count=50, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Reference:
    """An independent average-cost book of one position, fed the engine's fills."""

    def __init__(self) -> None:
        self.amount = D(0)
        self.entry = D(0)

    def apply(self, signed: D, price: D) -> D:
        amount = self.amount
        if amount == 0 or (amount > 0) == (signed > 0):
            size, quantity = abs(amount), abs(signed)
            self.entry = (size * self.entry + quantity * price) / (size + quantity)
            self.amount = amount + signed
            return D(0)
        closed = min(abs(signed), abs(amount))
        realized = to_wallet((price - self.entry) * closed if amount > 0 else (self.entry - price) * closed)
        self.amount = amount + signed
        if self.amount == 0:
            self.entry = D(0)
        elif (self.amount > 0) != (amount > 0):
            self.entry = price
        return realized


def make_machine(candles: dict[str, list[Candle]]):
    class ExchangeMachine(RuleBasedStateMachine):
        @initialize(start=st.integers(0, 9000), balance=st.sampled_from([D("150"), D("2000"), D("100000")]),
                    hedge=st.booleans(), isolated=st.sampled_from([(), ("BTCUSDT",), ("LTCUSDT",)]),
                    leverage=st.sampled_from([1, 3, 20, 50, 125]), fraction=st.sampled_from([D("0.00005"), D("0.1")]),
                    touch=st.booleans(), interval=st.sampled_from([1, 4, 8]))
        def setup(self, start, balance, hedge, isolated, leverage, fraction, touch, interval):
            from simulator.exchange_info import load_symbol_filters

            filters = load_symbol_filters()
            self.clock = SimulatedClock(0)
            config = SimConfig(max_volume_fraction=fraction, fill_on_touch=touch, leverage_brackets=BRACKETS,
                               funding_interval_hours={s: interval for s in SYMBOLS},
                               default_funding_rate=D("0.0003"))
            # The most a taker execution can move past its candle: the marginal impact at the full volume cap.
            self.impact_bound = config.impact_fraction * fraction.sqrt()
            self.isolated = set(isolated)
            self.ex = SimExchange({s: filters[s] for s in SYMBOLS}, clock=self.clock, config=config,
                                  initial_balance=balance)
            self.events: list[dict] = []
            self.ex.add_listener(self.events.append)
            self.deposits = balance
            self.hedge = hedge
            if hedge:
                self.ex.set_position_mode(True)
            for symbol in isolated:
                self.ex.set_margin_type(symbol, MarginType.ISOLATED)
            self.ex.set_leverage("BTCUSDT", leverage)
            self.ex.set_leverage("LTCUSDT", min(leverage, 20))
            self.index = {s: start for s in SYMBOLS}
            self.last: dict[str, Candle] = {}
            self.seen_trades = 0
            self.books: dict[tuple[str, PositionSide], Reference] = {}
            self.candles(1)

        # ------------------------------------------------------------------------------------- helpers
        def feed(self, symbol: str, skip: int) -> None:
            self.index[symbol] += skip
            candle = candles[symbol][self.index[symbol]]
            self.clock.set(max(self.clock.now_ms(), candle.close_time))
            self.ex.on_candle(candle)
            self.last[symbol] = candle
            self.check_new_fills(symbol)

        def check_new_fills(self, where: str | None) -> None:
            """Every fill since the last check is at a price the model allows against its candle (the one just fed
            for ``where``, else the symbol's last candle, for immediate executions): a resting order's (or a
            taking remainder's) fill at its own limit; a taker inside the candle moved by at most the impact of
            the volume cap; a liquidation inside the candle, or an isolated one at its bankruptcy price. Fills also
            feed the reference books."""
            fills = sorted((f for s in SYMBOLS for f in self.ex.user_trades(s, limit=1000)
                            if f.trade_id > self.seen_trades), key=lambda f: f.trade_id)
            for fill in fills:
                candle = self.last[fill.symbol]
                tick = TICK[fill.symbol]
                order = self.ex.query_order(fill.symbol, order_id=fill.order_id)
                if fill.client_order_id.startswith("autoclose"):
                    if fill.symbol not in self.isolated:
                        assert candle.low <= fill.price <= candle.high, (fill, candle)
                        assert self.ex.account().cross_wallet_balance >= 0  # cleared by the insurance fund
                elif fill.maker or (order.order_type is OrderType.LIMIT and fill.price == order.price):
                    assert fill.price == order.price, (fill, order)  # at its own limit, never better
                else:
                    low = round_to_tick(candle.low * (1 - self.impact_bound), tick, up=False)
                    high = round_to_tick(candle.high * (1 + self.impact_bound), tick, up=True)
                    assert low <= fill.price <= high, (fill, candle)
                    if order.order_type is OrderType.LIMIT:
                        assert fill.price <= order.price if fill.side is Side.BUY else fill.price >= order.price
                assert fill.price % tick == 0
                book = self.books.setdefault((fill.symbol, fill.position_side), Reference())
                realized = book.apply(fill.quantity if fill.side is Side.BUY else -fill.quantity, fill.price)
                assert fill.realized_pnl == realized, fill
                assert fill.trade_id == self.seen_trades + 1
                self.seen_trades = fill.trade_id
                event("fill " + ("liquidation" if fill.client_order_id.startswith("autoclose") else
                                 "maker" if fill.maker else "taker"))

        def position_side(self, side: Side, closing: bool) -> PositionSide:
            if not self.hedge:
                return PositionSide.BOTH
            long_side = (side is Side.BUY) != closing
            return PositionSide.LONG if long_side else PositionSide.SHORT

        def quantity(self, symbol: str, size: int) -> D:
            """``size`` tenths of what the account's equity could carry at this symbol's leverage."""
            buying_power = max(self.ex.account().equity, D(50)) * self.ex.leverage(symbol)
            return max(STEP[symbol], (buying_power * size / 10 / self.last[symbol].close).quantize(
                STEP[symbol], rounding=ROUND_DOWN))

        def attempt(self, call, **kwargs) -> None:
            try:
                call(**kwargs)
            except BinanceError as error:
                event(f"rejected {error.code}")  # a valid request the exchange may refuse (margin, reduce-only, filters...)
            self.check_new_fills(None)

        # --------------------------------------------------------------------------------------- rules
        @rule(skip=st.integers(1, 3) | st.integers(4, 240))
        def candles(self, skip):
            """The next minute (or one up to four hours later) of both symbols; the files are aligned."""
            if self.index[SYMBOLS[0]] + skip < len(candles[SYMBOLS[0]]):
                for symbol in SYMBOLS:
                    self.feed(symbol, skip)

        @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(Side), size=st.integers(1, 11),
              closing=st.booleans())
        def market(self, symbol, side, size, closing):
            self.attempt(self.ex.new_order, symbol=symbol, side=side, order_type=OrderType.MARKET,
                         quantity=self.quantity(symbol, size), position_side=self.position_side(side, closing),
                         reduce_only=closing and not self.hedge)

        @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(Side), size=st.integers(1, 11),
              ticks=st.integers(-30, 30), tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC,
                                                                TimeInForce.FOK, TimeInForce.GTX]),
              closing=st.booleans())
        def limit(self, symbol, side, size, ticks, tif, closing):
            price = self.last[symbol].close + ticks * TICK[symbol] * (10 if symbol == "BTCUSDT" else 1)
            self.attempt(self.ex.new_order, symbol=symbol, side=side, order_type=OrderType.LIMIT,
                         quantity=self.quantity(symbol, size), price=price, time_in_force=tif,
                         position_side=self.position_side(side, closing), reduce_only=closing and not self.hedge)

        @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(Side), size=st.integers(1, 11),
              kind=st.sampled_from([OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.STOP]),
              ticks=st.integers(1, 60), close=st.booleans(), mark=st.booleans())
        def conditional(self, symbol, side, size, kind, ticks, close, mark):
            rising = (kind is OrderType.STOP_MARKET or kind is OrderType.STOP) == (side is Side.BUY)
            tick = TICK[symbol] * (10 if symbol == "BTCUSDT" else 1)
            trigger = self.last[symbol].close + (ticks if rising else -ticks) * tick
            close = close and kind is not OrderType.STOP
            self.attempt(self.ex.new_algo_order, symbol=symbol, side=side, order_type=kind, trigger_price=trigger,
                         quantity=None if close else self.quantity(symbol, size),
                         price=trigger if kind is OrderType.STOP else None, close_position=close,
                         working_type=WorkingType.MARK_PRICE if mark else WorkingType.CONTRACT_PRICE,
                         position_side=self.position_side(side, close))

        @rule(pick=st.integers(0, 50))
        def cancel(self, pick):
            orders = self.ex.open_orders()
            if orders:
                order = orders[pick % len(orders)]
                self.ex.cancel_order(order.symbol, order_id=order.order_id)

        @rule(pick=st.integers(0, 50))
        def cancel_conditional(self, pick):
            algos = [a for a in self.ex.open_algo_orders() if a.status.value == "NEW"]
            if algos:
                self.ex.cancel_algo_order(algo_id=algos[pick % len(algos)].algo_id)

        @rule(amount=st.sampled_from([D("1"), D("25.5"), D("1000")]))
        def deposit(self, amount):
            self.ex.deposit(amount)
            self.deposits += amount

        @precondition(lambda self: True)
        @rule(symbol=st.sampled_from(SYMBOLS), bps=st.integers(-300, 300))
        def mark_price(self, symbol, bps):
            """A mark-price feed (switches the symbol's mark, MARK_PRICE triggers and liquidation to it)."""
            mark = (self.last[symbol].close * (1 + D(bps) / 10_000)).quantize(D("0.00000001"))
            self.ex.on_mark_price(MarkPrice(symbol, self.clock.now_ms(), mark, mark, D("0.0001"), 0))
            self.check_new_fills(None)

        # ---------------------------------------------------------------------------------- invariants
        @invariant()
        def books_balance(self):
            account = self.ex.account()
            fills = [f for s in SYMBOLS for f in self.ex.user_trades(s, limit=1000)]
            realized = sum((f.realized_pnl for f in fills), D(0))
            fees = sum((f.commission for f in fills), D(0))
            funding = sum((D(e["a"]["B"][0]["bc"]) for e in self.events
                           if e["e"] == "ACCOUNT_UPDATE" and e["a"]["m"] == "FUNDING_FEE"), D(0))
            cleared = sum((D(e["a"]["B"][0]["bc"]) for e in self.events
                           if e["e"] == "ACCOUNT_UPDATE" and e["a"]["m"] == "INSURANCE_CLEAR"), D(0))
            assert (account.realized_pnl, account.fees_paid, account.funding_total) == (realized, fees, funding)
            assert account.deposits == self.deposits
            assert account.insurance_cleared.quantize(D("1e-8")) == cleared  # events carry 8 decimals
            assert account.wallet_balance == self.deposits + realized - fees + funding + account.insurance_cleared

        @invariant()
        def equity_is_wallet_plus_unrealized_at_mark(self):
            # Each position's PnL from the reference book; summed in the engine's reporting order, because
            # entry prices are averages (Decimal divisions) and a sum's last digit can depend on its order.
            unrealized = D(0)
            for position in self.ex.positions():
                book = self.books[(position.symbol, position.position_side)]
                expected = book.amount * (self.ex.mark_price(position.symbol) - book.entry)
                assert position.unrealized_pnl == expected
                unrealized += expected
            account = self.ex.account()
            assert account.unrealized_pnl == unrealized
            assert account.equity == account.wallet_balance + unrealized

        @invariant()
        def positions_are_the_sum_of_their_fills(self):
            engine = {(p.symbol, p.position_side): (p.amount, p.entry_price) for p in self.ex.positions()}
            model = {key: (book.amount, book.entry) for key, book in self.books.items() if book.amount}
            assert engine == model
            for symbol in SYMBOLS:
                signed = {}
                for fill in self.ex.user_trades(symbol, limit=1000):
                    key = (symbol, fill.position_side)
                    signed[key] = signed.get(key, D(0)) + (fill.quantity if fill.side is Side.BUY else -fill.quantity)
                assert {k: v for k, v in signed.items() if v} == {k: v[0] for k, v in engine.items() if k[0] == symbol}

        @invariant()
        def every_fill_was_announced(self):
            announced = [(u["o"]["t"], D(u["o"]["L"]), D(u["o"]["l"])) for u in self.events
                         if u["e"] == "ORDER_TRADE_UPDATE" and u["o"]["x"] in ("TRADE", "CALCULATED")]
            fills = sorted((f.trade_id, f.price, f.quantity) for s in SYMBOLS
                            for f in self.ex.user_trades(s, limit=1000))
            assert announced == fills

    return ExchangeMachine


def test_random_orders_and_candles_keep_the_books(week_candles):
    run_state_machine_as_test(make_machine(week_candles), settings=PROPERTY_SETTINGS)


prices = st.integers(1, 100_000).map(lambda n: D(n) / 10)


@settings(max_examples=400, deadline=None)
@given(a=prices, b=prices, level=prices, falling=st.booleans(), bullish=st.booleans())
def test_path_reaches_levels_in_order(a, b, level, falling, bullish):
    low, high = min(a, b), max(a, b)
    candle = Candle("X", 0, 59_999, low if bullish else high, high, low, high if bullish else low, D(1))
    path = candle_path(candle)
    key = first_reach(path, level, falling)
    assert (key is not None) == (low <= level if falling else high >= level)
    if key is not None:
        reached = price_at(path, key)
        assert low <= reached <= high
        assert reached == level or key == (0, D(0))


@settings(max_examples=400, deadline=None)
@given(a=prices, b=prices, reference=prices, bps=st.integers(0, 500), impact_bps=st.integers(0, 200),
       buying=st.booleans())
def test_execution_prices_stay_on_the_tick_and_leave_the_candle_by_the_impact_only(a, b, reference, bps,
                                                                                   impact_bps, buying):
    low, high = min(a, b), max(a, b)
    impact = D(impact_bps) / 10_000
    price = taker_price(reference, buying, D(bps) / 10_000, D("0.1"), low, high, impact)
    assert price % D("0.1") == 0
    if buying:  # never below the candle; above it by the impact at most
        assert low <= price <= (high * (1 + impact) / D("0.1")).to_integral_value(ROUND_CEILING) * D("0.1")
    else:
        assert (low * (1 - impact) / D("0.1")).to_integral_value(ROUND_FLOOR) * D("0.1") <= price <= high
    if not impact:
        assert low <= price <= high
