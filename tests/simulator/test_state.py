"""State snapshot and restore: an exchange rebuilt from its snapshot carries on exactly as the original would."""

from __future__ import annotations

import json
from decimal import ROUND_DOWN
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simulator.account import parse_leverage_brackets
from simulator.engine import SimConfig, SimExchange
from simulator.exchange_info import load_symbol_filters
from simulator.state import StateError, encode
from utils.clock import SimulatedClock
from utils.domain import Candle, MarginType, MarkPrice, OrderType, PositionSide, Side, TimeInForce, WorkingType
from utils.errors import BinanceError

SYMBOLS = ("BTCUSDT", "LTCUSDT")
STEP = D("0.001")
TICK = {"BTCUSDT": D("1"), "LTCUSDT": D("0.01")}  # ten ticks for BTCUSDT, one for LTCUSDT
BRACKETS = parse_leverage_brackets([{"symbol": "BTCUSDT", "brackets": [
    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004,
     "cum": 0},
    {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 50000,
     "maintMarginRatio": 0.005, "cum": 50}]}])


class World:
    """One exchange, its clock, where it is in the candle files, and what it said (events and answers)."""

    def __init__(self, exchange: SimExchange, clock: SimulatedClock, candles: dict[str, list[Candle]],
                 index: dict[str, int], hedge: bool) -> None:
        self.exchange = exchange
        self.clock = clock
        self.candles = candles
        self.index = dict(index)
        self.hedge = hedge
        self.events: list[str] = []
        self.answers: list[Any] = []
        exchange.add_listener(lambda event: self.events.append(json.dumps(event)))

    def last(self, symbol: str) -> Candle:
        return self.candles[symbol][self.index[symbol]]

    def quantity(self, symbol: str, size: int) -> D:
        power = max(self.exchange.account().equity, D(50)) * self.exchange.leverage(symbol)
        return max(STEP, (power * size / 10 / self.last(symbol).close).quantize(STEP, rounding=ROUND_DOWN))

    def position_side(self, side: Side, closing: bool) -> PositionSide:
        if not self.hedge:
            return PositionSide.BOTH
        return PositionSide.LONG if (side is Side.BUY) != closing else PositionSide.SHORT

    def apply(self, operation: tuple[Any, ...]) -> None:
        try:
            self.answers.append(encode(self._apply(operation)))
        except BinanceError as error:
            self.answers.append(["error", error.code, error.msg])

    def _apply(self, operation: tuple[Any, ...]) -> Any:
        kind, *args = operation
        ex = self.exchange
        if kind == "candles":
            (skip,) = args
            if self.index[SYMBOLS[0]] + skip >= len(self.candles[SYMBOLS[0]]):
                return None
            for symbol in SYMBOLS:
                self.index[symbol] += skip
                candle = self.last(symbol)
                self.clock.set(max(self.clock.now_ms(), candle.close_time))
                ex.on_candle(candle)
            return None
        if kind == "wait":
            self.clock.advance(args[0])
            ex.settle_due_funding()
            return None
        if kind == "market":
            symbol, side, size, closing, named = args
            return ex.new_order(symbol=symbol, side=side, order_type=OrderType.MARKET,
                                quantity=self.quantity(symbol, size), position_side=self.position_side(side, closing),
                                reduce_only=closing and not self.hedge,
                                client_order_id=f"market-{symbol}-{size}" if named else None)
        if kind == "limit":
            symbol, side, size, ticks, tif, closing = args
            return ex.new_order(symbol=symbol, side=side, order_type=OrderType.LIMIT,
                                quantity=self.quantity(symbol, size), price=self.last(symbol).close + ticks * TICK[symbol],
                                time_in_force=tif, position_side=self.position_side(side, closing),
                                reduce_only=closing and not self.hedge)
        if kind == "conditional":
            symbol, side, size, order_type, ticks, close, mark = args
            rising = (order_type is OrderType.STOP_MARKET or order_type is OrderType.STOP) == (side is Side.BUY)
            trigger = self.last(symbol).close + (ticks if rising else -ticks) * TICK[symbol]
            close = close and order_type is not OrderType.STOP
            return ex.new_algo_order(symbol=symbol, side=side, order_type=order_type, trigger_price=trigger,
                                     quantity=None if close else self.quantity(symbol, size),
                                     price=trigger if order_type is OrderType.STOP else None, close_position=close,
                                     working_type=WorkingType.MARK_PRICE if mark else WorkingType.CONTRACT_PRICE,
                                     position_side=self.position_side(side, close))
        if kind == "cancel":
            orders = ex.open_orders()
            return ex.cancel_order(orders[args[0] % len(orders)].symbol,
                                   order_id=orders[args[0] % len(orders)].order_id) if orders else None
        if kind == "cancel_algo":
            algos = [a for a in ex.open_algo_orders() if a.status.value == "NEW"]
            return ex.cancel_algo_order(algo_id=algos[args[0] % len(algos)].algo_id) if algos else None
        if kind == "query":
            symbol, order_id = args
            return ex.query_order(symbol, order_id=order_id)
        if kind == "deposit":
            ex.deposit(args[0])
            return None
        if kind == "mark":
            symbol, bps = args
            mark = (self.last(symbol).close * (1 + D(bps) / 10_000)).quantize(D("0.00000001"))
            ex.on_mark_price(MarkPrice(symbol, self.clock.now_ms(), mark, mark, D("0.0001"), 0))
            return None
        if kind == "leverage":
            return ex.set_leverage(*args)
        raise AssertionError(kind)

    def views(self) -> Any:
        ex = self.exchange
        return encode([ex.account(), ex.positions(), ex.position_risk(), ex.open_orders(), ex.open_algo_orders(),
                       [ex.user_trades(s, limit=1000) for s in SYMBOLS]])


symbols = st.sampled_from(SYMBOLS)
sides = st.sampled_from(Side)
closing = st.sampled_from([False, False, True])
market_orders = st.tuples(st.just("market"), symbols, sides, st.integers(1, 11), closing, st.booleans())
limit_orders = st.tuples(st.just("limit"), symbols, sides, st.integers(1, 8), st.integers(-30, 30) | st.integers(-400, 400),
                         st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC,
                                          TimeInForce.FOK, TimeInForce.GTX]),
                         closing)
operations = st.one_of(
    market_orders, limit_orders, limit_orders,
    st.tuples(st.just("candles"), st.integers(1, 3) | st.integers(4, 120)),
    st.tuples(st.just("wait"), st.integers(1, 20_000_000)),
    st.tuples(st.just("conditional"), symbols, sides, st.integers(1, 11),
              st.sampled_from([OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.STOP]),
              st.integers(1, 60), st.booleans(), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("cancel_algo"), st.integers(0, 50)),
    st.tuples(st.just("query"), symbols, st.integers(1, 30)),
    st.tuples(st.just("deposit"), st.sampled_from([D("1"), D("25.5")])),
    st.tuples(st.just("mark"), symbols, st.integers(-300, 300)),
    st.tuples(st.just("leverage"), symbols, st.sampled_from([1, 5, 20, 75])),
)
setups = st.fixed_dictionaries({
    "start": st.integers(0, 9000), "balance": st.sampled_from([D("150"), D("2000"), D("100000")]),
    "hedge": st.booleans(), "isolated": st.sampled_from([(), ("BTCUSDT",), ("LTCUSDT",)]),
    "leverage": st.sampled_from([1, 20, 125]), "fraction": st.sampled_from([D("0.00005"), D("0.1")]),
    "touch": st.booleans(), "seed": st.integers(0, 3),
})


def build(week_candles: dict[str, list[Candle]], setup: dict[str, Any]) -> World:
    filters = load_symbol_filters()
    clock = SimulatedClock(0)
    config = SimConfig(max_volume_fraction=setup["fraction"], fill_on_touch=setup["touch"],
                       leverage_brackets=BRACKETS, default_funding_rate=D("0.0003"), seed=setup["seed"],
                       funding_interval_hours={"LTCUSDT": 4})
    exchange = SimExchange({s: filters[s] for s in SYMBOLS}, clock=clock, config=config,
                           initial_balance=setup["balance"])
    if setup["hedge"]:
        exchange.set_position_mode(True)
    for symbol in setup["isolated"]:
        exchange.set_margin_type(symbol, MarginType.ISOLATED)
    exchange.set_leverage("BTCUSDT", setup["leverage"])
    exchange.set_leverage("LTCUSDT", min(setup["leverage"], 20))
    world = World(exchange, clock, week_candles, {s: setup["start"] for s in SYMBOLS}, setup["hedge"])
    world.apply(("candles", 1))
    return world


@pytest.mark.shared_data
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(setup=setups, before=st.lists(operations, min_size=6, max_size=40), after=st.lists(operations, min_size=1, max_size=30))
def test_snapshot_restore_then_continue_is_the_same_as_continuing(week_candles, setup, before, after) -> None:
    original = build(week_candles, setup)
    for operation in before:
        original.apply(operation)
    snapshot = json.dumps(original.exchange.snapshot())
    clock = SimulatedClock(original.clock.now_ms())
    restored = World(SimExchange.restore(json.loads(snapshot), clock=clock), clock, week_candles, original.index,
                     setup["hedge"])
    assert json.dumps(restored.exchange.snapshot()) == snapshot
    assert restored.views() == original.views()
    original.events.clear()
    for operation in after:
        original.apply(operation)
        restored.apply(operation)
    assert restored.answers == original.answers[len(before) + 1:]
    assert restored.events == original.events
    assert restored.views() == original.views()
    assert restored.exchange.snapshot() == original.exchange.snapshot()
    trades = sum(len(original.exchange.user_trades(s, limit=1000)) for s in SYMBOLS)
    event(f"trades: {'none' if not trades else 'a few' if trades < 5 else 'many'}")
    event(f"events after the round trip: {'none' if not restored.events else 'some'}")
    saved = json.loads(snapshot)["symbols"].values()
    event(f"open orders at the snapshot: {any(symbol['open_orders'] for symbol in saved)}")
    event(f"positions at the snapshot: {any(D(p['amount']) for symbol in saved for p in symbol['positions'])}")


def test_a_snapshot_is_plain_json_with_exact_decimal_strings(make_venue) -> None:
    venue = make_venue()
    ex = venue.exchange
    venue.candle(Candle("BTCUSDT", 0, 59_999, D("30000"), D("30010"), D("29990"), D("30005.3"), D("100")))
    ex.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.003"))
    ex.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.004"))
    snapshot = ex.snapshot()
    text = json.dumps(snapshot)  # no Decimal, enum or tuple left in it
    assert "Decimal" not in text
    position = snapshot["symbols"]["BTCUSDT"]["positions"][0]
    assert D(position["entry_price"]) == ex.positions()[0].entry_price
    assert position["entry_price"] == str(ex.positions()[0].entry_price)  # every digit, as str() wrote it
    assert snapshot["account"]["next_order_id"] == 3 and snapshot["account"]["next_trade_id"] == 3


def test_save_and_load_state_through_a_file(make_venue, tmp_path) -> None:
    venue = make_venue()
    ex = venue.exchange
    venue.candle(Candle("BTCUSDT", 0, 59_999, D("30000"), D("30010"), D("29990"), D("30005.3"), D("100")))
    ex.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.LIMIT, quantity=D("0.01"),
                 price=D("31000"), time_in_force=TimeInForce.GTC, client_order_id="resting-1")
    path = tmp_path / "exchange.json"
    ex.save_state(path)
    first = path.read_text()
    ex.cancel_order("BTCUSDT", client_order_id="resting-1")
    ex.save_state(path)  # replaces the file whole
    assert [p.name for p in tmp_path.iterdir()] == ["exchange.json"]  # no temporary file left behind
    restored = SimExchange.load_state(path, clock=SimulatedClock(venue.clock.now_ms()))
    assert restored.query_order("BTCUSDT", client_order_id="resting-1").status.value == "CANCELED"
    assert not restored.open_orders()
    assert json.loads(first)["symbols"]["BTCUSDT"]["open_orders"] == [1]


def test_a_failed_save_leaves_the_previous_state_file(make_venue, tmp_path, monkeypatch) -> None:
    venue = make_venue()
    path = tmp_path / "exchange.json"
    venue.exchange.save_state(path)
    before = path.read_text()
    import simulator.state

    def broken_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(simulator.state.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        venue.exchange.save_state(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["exchange.json"]


def test_a_bad_state_document_names_the_field(make_venue) -> None:
    venue = make_venue()
    venue.candle(Candle("BTCUSDT", 0, 59_999, D("30000"), D("30010"), D("29990"), D("30005.3"), D("100")))
    venue.exchange.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.003"))
    snapshot = venue.exchange.snapshot()
    clock = SimulatedClock(venue.clock.now_ms())
    broken = json.loads(json.dumps(snapshot))
    broken["symbols"]["BTCUSDT"]["positions"][0]["amount"] = 0.003
    with pytest.raises(StateError, match=r"state\.symbols\.BTCUSDT\.positions\[0\]\.amount: expected a decimal"):
        SimExchange.restore(broken, clock=clock)
    broken = json.loads(json.dumps(snapshot))
    del broken["symbols"]["BTCUSDT"]["trades"][0]["commission"]
    with pytest.raises(StateError, match=r"trades\[0\]: field 'commission' is missing"):
        SimExchange.restore(broken, clock=clock)
    broken = json.loads(json.dumps(snapshot))
    broken["symbols"]["BTCUSDT"]["open_orders"] = [77]
    with pytest.raises(StateError, match="refers to id 77"):
        SimExchange.restore(broken, clock=clock)
    with pytest.raises(StateError, match="clock is at 5"):
        SimExchange.restore(snapshot, clock=SimulatedClock(5))


def test_id_counters_can_start_past_an_older_accounts_ids(make_venue, symbol_filters) -> None:
    clock = SimulatedClock(0)
    ex = SimExchange(symbol_filters, clock=clock, first_order_id=5_000, first_trade_id=70_000, first_algo_id=900)
    clock.set(59_999)
    ex.on_candle(Candle("BTCUSDT", 0, 59_999, D("30000"), D("30010"), D("29990"), D("30005.3"), D("100")))
    order = ex.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.003"))
    algo = ex.new_algo_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.STOP_MARKET,
                             trigger_price=D("29000"), close_position=True)
    assert (order.order_id, ex.user_trades("BTCUSDT")[0].trade_id, algo.algo_id) == (5_000, 70_000, 900)
    restored = SimExchange.restore(ex.snapshot(), clock=clock)
    assert restored.new_order(symbol="BTCUSDT", side=Side.SELL, order_type=OrderType.MARKET,
                              quantity=D("0.003")).order_id == 5_001
    assert restored.user_trades("BTCUSDT")[-1].trade_id == 70_001
    with pytest.raises(ValueError, match="first_trade_id must be a positive integer"):
        SimExchange(symbol_filters, clock=clock, first_trade_id=0)


@pytest.mark.shared_data
@pytest.mark.parametrize("hedge", [False, True])
def test_a_busy_exchange_carries_on_identically_after_a_round_trip(week_candles, hedge) -> None:
    """At the snapshot: positions in both symbols (one isolated), resting orders, a partly filled order and
    conditional orders of every kind; then two days of candles, marks and orders on both copies."""
    setup = {"start": 3000, "balance": D("20000"), "hedge": hedge, "isolated": ("LTCUSDT",), "leverage": 20,
             "fraction": D("0.0002"), "touch": False, "seed": 1}
    original = build(week_candles, setup)
    script = [
        ("market", "BTCUSDT", Side.BUY, 2, False, True), ("market", "LTCUSDT", Side.SELL, 2, False, False),
        ("limit", "BTCUSDT", Side.BUY, 1, -150, TimeInForce.GTC, False),
        ("limit", "LTCUSDT", Side.SELL, 1, 40, TimeInForce.GTX, False),
        ("limit", "BTCUSDT", Side.BUY, 3, 30, TimeInForce.GTC, False),  # marketable, larger than the volume cap
        ("conditional", "BTCUSDT", Side.SELL, 1, OrderType.STOP_MARKET, 250, True, True),
        ("conditional", "BTCUSDT", Side.SELL, 1, OrderType.TAKE_PROFIT_MARKET, 250, False, False),
        ("conditional", "LTCUSDT", Side.BUY, 1, OrderType.STOP, 90, False, False),
    ]
    for operation in script:
        original.apply(operation)
    assert all(not (isinstance(answer, list) and answer and answer[0] == "error") for answer in original.answers)
    snapshot = original.exchange.snapshot()
    assert snapshot["symbols"]["BTCUSDT"]["open_orders"] and snapshot["open_algo_by_client"]
    clock = SimulatedClock(original.clock.now_ms())
    restored = World(SimExchange.restore(json.loads(json.dumps(snapshot)), clock=clock), clock, week_candles,
                     original.index, hedge)
    original.events.clear()
    later = []
    for minute in range(2 * 1440):
        later.append(("candles", 1))
        if minute % 240 == 17:
            later += [("mark", "BTCUSDT", minute % 7 - 3), ("market", "LTCUSDT", Side.BUY, 1, True, False),
                      ("limit", "BTCUSDT", Side.SELL, 1, 60, TimeInForce.GTC, minute % 2 == 1)]
    for operation in later:
        original.apply(operation)
        restored.apply(operation)
    assert len(original.events) > 50
    assert restored.events == original.events
    assert restored.answers == original.answers[len(script) + 1:]
    assert restored.exchange.snapshot() == original.exchange.snapshot()
