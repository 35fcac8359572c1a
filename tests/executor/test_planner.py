"""Order planning: sizing, entries, exits, reversals, ownership, hedge mode, protective orders, ids."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from executor.ids import CLIENT_ORDER_ID_PATTERN, client_order_id
from executor.planner import ExecutionSettings, Holding, SizingMode, plan_signal, protective_orders
from utils.domain import OrderType, PositionMode, PositionSide, Side, Signal, SignalSide
from utils.filters import SymbolFilters

FILTERS = SymbolFilters.from_exchange_info({
    "symbol": "BTCUSDT", "pricePrecision": 2, "quantityPrecision": 3,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "402", "maxPrice": "1246396.60", "tickSize": "0.10"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
        {"filterType": "MIN_NOTIONAL", "notional": "10"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.05", "multiplierDown": "0.95", "multiplierDecimal": "4"},
    ],
})
SETTINGS = ExecutionSettings("ema_crossover", "BTCUSDT", SizingMode.FIXED_NOTIONAL, D("100"), 5)
PRICE = D("30000")


def signal(side: SignalSide, strategy: str = "ema_crossover", time: int = 1_682_000_000_000) -> Signal:
    return Signal(strategy, "BTCUSDT", side, D("1"), "test", time)


def plan(side, holdings=None, mode=PositionMode.ONEWAY, settings=SETTINGS, strategy="ema_crossover", equity=D(1000)):
    return plan_signal(signal(side, strategy), settings=settings, filters=FILTERS, position_mode=mode,
                       holdings=holdings or {}, reference_price=PRICE, equity=equity)


def test_long_from_flat_opens_a_rounded_market_entry() -> None:
    result = plan(SignalSide.LONG)
    assert result.refused is None and len(result.intents) == 1
    entry = result.intents[0]
    assert (entry.side, entry.order_type, entry.quantity, entry.reduce_only) == (Side.BUY, OrderType.MARKET,
                                                                                 D("0.003"), False)
    assert entry.quantity * PRICE <= D("100")  # never more than sizing allowed
    assert entry.purpose == "entry" and entry.position_side is PositionSide.BOTH


def test_equity_fraction_sizing_uses_leverage() -> None:
    settings = ExecutionSettings("ema_crossover", "BTCUSDT", SizingMode.EQUITY_FRACTION, D("0.1"), 5)
    entry = plan(SignalSide.SHORT, settings=settings, equity=D("2000")).intents[0]
    # margin 200 x leverage 5 = 1000 USDT notional -> 0.033 BTC at 30000 (rounded down)
    assert entry.side is Side.SELL and entry.quantity == D("0.033")


def test_too_small_to_trade_is_refused_with_the_reason() -> None:
    settings = ExecutionSettings("ema_crossover", "BTCUSDT", SizingMode.FIXED_NOTIONAL, D("5"), 5)
    result = plan(SignalSide.LONG, settings=settings)
    assert result.empty and "below the symbol's minimum" in result.refused


def test_same_side_is_a_no_op_and_flat_closes_reduce_only() -> None:
    owned = {PositionSide.BOTH: Holding(D("0.003"), "ema_crossover")}
    assert plan(SignalSide.LONG, owned).empty
    exit_plan = plan(SignalSide.FLAT, owned)
    (exit_intent,) = exit_plan.intents
    assert (exit_intent.side, exit_intent.quantity, exit_intent.reduce_only) == (Side.SELL, D("0.003"), True)
    assert exit_intent.purpose == "exit"
    assert plan(SignalSide.FLAT).empty


def test_reversal_closes_then_opens() -> None:
    owned = {PositionSide.BOTH: Holding(D("-0.005"), "ema_crossover")}
    close, entry = plan(SignalSide.LONG, owned).intents
    assert (close.side, close.quantity, close.reduce_only, close.purpose) == (Side.BUY, D("0.005"), True, "exit")
    assert (entry.side, entry.reduce_only, entry.purpose) == (Side.BUY, False, "entry")
    assert close.client_order_id != entry.client_order_id


def test_another_strategys_position_is_refused() -> None:
    owned = {PositionSide.BOTH: Holding(D("0.003"), "donchian_breakout")}
    result = plan(SignalSide.SHORT, owned)
    assert result.empty and "owned by donchian_breakout" in result.refused
    assert "unknown source" in plan(SignalSide.FLAT, {PositionSide.BOTH: Holding(D("1"), None)}).refused


def test_hedge_mode_uses_position_sides_and_no_reduce_only() -> None:
    result = plan(SignalSide.LONG, mode=PositionMode.HEDGE)
    assert result.intents[0].position_side is PositionSide.LONG and result.intents[0].side is Side.BUY
    holdings = {PositionSide.SHORT: Holding(D("-0.004"), "ema_crossover")}
    close, entry = plan(SignalSide.LONG, holdings, mode=PositionMode.HEDGE).intents
    assert (close.position_side, close.side, close.reduce_only) == (PositionSide.SHORT, Side.BUY, False)
    assert entry.position_side is PositionSide.LONG
    both = {PositionSide.SHORT: Holding(D("-0.004"), "ema_crossover"),
            PositionSide.LONG: Holding(D("0.002"), "ema_crossover")}
    closes = plan(SignalSide.FLAT, both, mode=PositionMode.HEDGE).intents
    assert {(c.position_side, c.side) for c in closes} == {(PositionSide.SHORT, Side.BUY),
                                                           (PositionSide.LONG, Side.SELL)}


def test_limit_entries_are_priced_on_the_safe_side() -> None:
    settings = ExecutionSettings("ema_crossover", "BTCUSDT", SizingMode.FIXED_NOTIONAL, D("100"), 5,
                                 entry_order_type=OrderType.LIMIT, limit_offset_bps=D("3"))
    buy = plan(SignalSide.LONG, settings=settings).intents[0]
    assert buy.price == D("29991.0") and buy.time_in_force.value == "GTC"
    sell = plan(SignalSide.SHORT, settings=settings).intents[0]
    assert sell.price == D("30009.0")


def test_protective_orders_sit_on_the_right_side_and_close_the_position() -> None:
    settings = ExecutionSettings("ema_crossover", "BTCUSDT", SizingMode.FIXED_NOTIONAL, D("100"), 5,
                                 stop_loss_pct=D("1"), take_profit_pct=D("2"))
    entry = plan(SignalSide.LONG, settings=settings).intents[0]
    stop, take = protective_orders(entry, D("30000.05"), settings, FILTERS)
    assert stop.order_type is OrderType.STOP_MARKET and stop.side is Side.SELL and stop.close_position
    assert stop.stop_price == D("29700.1")  # 29700.0495 rounded towards the entry
    assert take.order_type is OrderType.TAKE_PROFIT_MARKET and take.stop_price == D("30600.0")  # 30600.051 rounded towards the entry
    short_entry = plan(SignalSide.SHORT, settings=settings).intents[0]
    short_stop, short_take = protective_orders(short_entry, D("30000"), settings, FILTERS)
    assert short_stop.side is Side.BUY and short_stop.stop_price == D("30300.0")
    assert short_take.stop_price == D("29400.0")


def test_client_order_ids_are_deterministic_and_valid() -> None:
    a = plan(SignalSide.LONG).intents[0].client_order_id
    b = plan(SignalSide.LONG).intents[0].client_order_id
    assert a == b and CLIENT_ORDER_ID_PATTERN.match(a)
    other = plan_signal(signal(SignalSide.LONG, time=1_682_000_060_000), settings=SETTINGS, filters=FILTERS,
                        position_mode=PositionMode.ONEWAY, holdings={}, reference_price=PRICE, equity=D(1))
    assert other.intents[0].client_order_id != a


@given(strategy=st.text(min_size=1, max_size=60), symbol=st.from_regex(r"[A-Z0-9]{3,20}", fullmatch=True),
       time=st.integers(0, 2**42), purpose=st.sampled_from(["entry", "exit", "reverse", "stop_loss"]),
       attempt=st.integers(0, 9))
def test_client_order_id_always_matches_binance_rule(strategy, symbol, time, purpose, attempt) -> None:
    cid = client_order_id(strategy, symbol, time, purpose, "BUY", attempt)
    assert CLIENT_ORDER_ID_PATTERN.match(cid)
    assert cid == client_order_id(strategy, symbol, time, purpose, "BUY", attempt)
    assert cid != client_order_id(strategy + "x", symbol, time, purpose, "BUY", attempt)
    assert cid != client_order_id(strategy, symbol, time, purpose, "SELL", attempt)


def test_a_reserved_position_belongs_to_its_strategy() -> None:
    reserved = {PositionSide.BOTH: Holding(D("0"), "donchian_breakout")}
    result = plan(SignalSide.SHORT, reserved)
    assert result.empty and "owned by donchian_breakout" in result.refused
    assert plan(SignalSide.SHORT, reserved, strategy="donchian_breakout").intents
    hedge = {PositionSide.LONG: Holding(D("0"), "donchian_breakout")}
    assert "owned by" in plan(SignalSide.LONG, hedge, mode=PositionMode.HEDGE).refused
    assert plan(SignalSide.SHORT, hedge, mode=PositionMode.HEDGE).intents  # the other side is free
