"""Conditional orders through the algo API (since Dec 2025): validation, triggers, ALGO_UPDATE lifecycle."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from utils.domain import AlgoStatus, OrderType, PositionSide, Side, TimeInForce, WorkingType
from utils.errors import BinanceError

pytestmark = pytest.mark.shared_data

BTC = "BTCUSDT"


def code_of(call, **kwargs) -> tuple[int, str]:
    with pytest.raises(BinanceError) as caught:
        call(**kwargs)
    return caught.value.code, caught.value.msg


def algo(venue, side, order_type, trigger, quantity="0.010", **kwargs):
    return venue.exchange.new_algo_order(symbol=BTC, side=side, order_type=order_type, trigger_price=D(trigger),
                                         quantity=None if quantity is None else D(quantity), **kwargs)


def market(venue, side, quantity="0.010", **kwargs):
    return venue.exchange.new_order(symbol=BTC, side=side, order_type=OrderType.MARKET, quantity=D(quantity),
                                    **kwargs)


@pytest.fixture
def long_venue(make_venue, btc):
    """Long 0.010 BTCUSDT after minute 0 (close 28795.30)."""
    venue = make_venue()
    venue.candle(btc[0])
    market(venue, Side.BUY)
    return venue


class TestValidation:
    def test_rejections(self, long_venue):
        v = long_venue
        new = v.exchange.new_algo_order
        base = dict(symbol=BTC, side=Side.SELL, trigger_price=D("28700.0"))
        assert code_of(new, order_type=OrderType.LIMIT, quantity=D("0.01"), **base)[0] == -1116
        assert code_of(new, order_type=OrderType.TRAILING_STOP_MARKET, quantity=D("0.01"), **base)[0] == -1116
        assert code_of(new, order_type=OrderType.STOP_MARKET, **base) == (
            -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        assert code_of(new, order_type=OrderType.STOP_MARKET, quantity=D("0.01"), close_position=True, **base) == (
            -4137, "Quantity must be zero with closePosition equals true")
        assert code_of(new, order_type=OrderType.STOP_MARKET, close_position=True, reduce_only=True, **base) == (
            -1106, "Parameter 'reduceonly' sent when not required.")
        assert code_of(new, order_type=OrderType.STOP, close_position=True, price=D("28600.0"), **base)[0] == -4136
        assert code_of(new, order_type=OrderType.STOP, quantity=D("0.01"), **base)[0] == -1102  # price
        assert code_of(new, order_type=OrderType.STOP_MARKET, quantity=D("0.01"), price=D("28600.0"), **base)[0] \
            == -1106
        assert code_of(new, order_type=OrderType.STOP_MARKET, quantity=D("0.01"), symbol=BTC, side=Side.SELL,
                       trigger_price=D("28700.005"))[0] == -1111
        assert code_of(new, order_type=OrderType.STOP_MARKET, quantity=D("0.01"), symbol=BTC, side=Side.SELL,
                       trigger_price=D("28700.01"))[0] == -4014
        assert code_of(new, order_type=OrderType.STOP_MARKET, quantity=D("0.0001"), **base)[0] == -1111
        assert code_of(new, order_type=OrderType.STOP_MARKET, quantity=D("0.01"), position_side=PositionSide.LONG,
                       **base)[0] == -4061
        assert code_of(new, order_type=OrderType.STOP_MARKET, quantity=D("0.01"), client_algo_id="bad id",
                       **base)[0] == -4015

    def test_would_immediately_trigger(self, long_venue):
        assert code_of(algo, venue=long_venue, side=Side.SELL, order_type=OrderType.STOP_MARKET,
                       trigger="28800.0") == (-2021, "Order would immediately trigger.")
        assert code_of(algo, venue=long_venue, side=Side.BUY, order_type=OrderType.TAKE_PROFIT_MARKET,
                       trigger="28800.0")[0] == -2021
        assert code_of(algo, venue=long_venue, side=Side.SELL, order_type=OrderType.TAKE_PROFIT_MARKET,
                       trigger="28795.3")[0] == -2021

    def test_duplicates_and_limits(self, long_venue):
        v = long_venue
        algo(v, Side.SELL, OrderType.STOP_MARKET, "28700.0", client_algo_id="sl-1")
        assert code_of(algo, venue=v, side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger="28600.0",
                       client_algo_id="sl-1") == (-4116, "ClientOrderId is duplicated.")
        algo(v, Side.SELL, OrderType.STOP_MARKET, "28650.0", quantity=None, close_position=True)
        assert code_of(algo, venue=v, side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger="28640.0",
                       quantity=None, close_position=True)[0] == -4130
        for step in range(8):
            algo(v, Side.SELL, OrderType.STOP_MARKET, str(28000 + step))
        assert code_of(algo, venue=v, side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger="27900.0") == (
            -4045, "Reach max stop order limit.")

    def test_min_notional_at_the_trigger_price(self, make_venue, ltc):
        venue = make_venue()
        venue.candle(ltc[0])
        assert code_of(venue.exchange.new_algo_order, symbol="LTCUSDT", side=Side.BUY,
                       order_type=OrderType.STOP_MARKET, trigger_price=D("95.00"), quantity=D("0.05"))[0] == -4164


class TestLifecycle:
    def test_stop_market_close_position(self, long_venue, btc):
        v = long_venue
        stop = algo(v, Side.SELL, OrderType.STOP_MARKET, "28770.0", quantity=None, close_position=True,
                    client_algo_id="sl-long")
        assert stop.status is AlgoStatus.NEW and [a.algo_id for a in v.exchange.open_algo_orders(BTC)] == [1]
        start = len(v.events)
        v.candle(btc[1])  # falls to 28759.60 through 28770.0
        sequence = [(e["e"], e["o"].get("X") if "o" in e else e["a"]["m"]) for e in v.events[start:]]
        assert sequence == [("ALGO_UPDATE", "TRIGGERING"), ("ORDER_TRADE_UPDATE", "NEW"),
                            ("ORDER_TRADE_UPDATE", "FILLED"), ("ACCOUNT_UPDATE", "ORDER"),
                            ("ALGO_UPDATE", "TRIGGERED"), ("ALGO_UPDATE", "FINISHED")]
        child = v.events[start + 2]["o"]
        # The triggered order carries the clientAlgoId, the algo type as origType and the trigger as stopPrice.
        assert (child["c"], child["o"], child["ot"], child["sp"], child["cp"], child["R"]) == (
            "sl-long", "MARKET", "STOP_MARKET", "28770.0", True, True)
        # Filled at the trigger less 1 bp slippage (28767.123) and the impact of 0.010 of the candle's 1128.514 BTC
        # (10 bp x 2/3 x sqrt(0.010 / 1128.514) = 0.0000019845, 0.057): 28767.066, down to the tick.
        assert D(child["L"]) == D("28767.0") and child["m"] is False
        finished = v.events[-1]["o"]
        assert (finished["ai"], D(finished["aq"]), D(finished["ap"]), finished["act"]) == (
            str(child["i"]), D("0.010"), D("28767.0"), "MARKET")
        state = v.exchange.query_algo_order(client_algo_id="sl-long")
        assert state.status is AlgoStatus.FINISHED and state.actual_order_id == child["i"]
        assert state.trigger_time == btc[1].close_time
        assert v.exchange.open_algo_orders() == [] and v.exchange.positions() == []
        assert v.exchange.order_orig_type(BTC, child["i"]) is OrderType.STOP_MARKET

    def test_take_profit_market_for_a_short(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        market(venue, Side.SELL, "0.020")
        algo(venue, Side.BUY, OrderType.TAKE_PROFIT_MARKET, "28780.0", quantity="0.020", reduce_only=True)
        venue.candle(btc[1])
        assert venue.exchange.positions() == []
        assert venue.exchange.user_trades(BTC)[-1].price == D("28783.0")  # 28780 + 1 bp + 0.081 impact, up

    def test_opening_stop_entry(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        algo(venue, Side.BUY, OrderType.STOP_MARKET, "28800.0")  # buy the breakout
        venue.candle(btc[1])  # high 28800.90
        [position] = venue.exchange.positions()
        # 28800 + 1 bp, clamped to the high 28800.90, then the impact on top (+0.057): 28800.957, up to the tick
        assert position.amount == D("0.010") and position.entry_price == D("28801.0")

    def test_reduce_only_with_nothing_to_reduce_is_cancelled(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        algo(venue, Side.SELL, OrderType.STOP_MARKET, "28770.0", reduce_only=True)
        venue.candle(btc[1])
        event = venue.events[-1]["o"]
        assert (event["X"], event["rm"]) == ("CANCELED", "Reduce Only reject")
        assert venue.exchange.user_trades(BTC) == []

    def test_stop_before_take_profit_on_a_bearish_candle(self, long_venue, btc):
        v = long_venue
        algo(v, Side.SELL, OrderType.TAKE_PROFIT_MARKET, "28800.0", quantity=None, close_position=True)
        algo(v, Side.SELL, OrderType.STOP_MARKET, "28770.0", quantity=None, close_position=True)
        v.candle(btc[1])  # O 28795.20 -> H 28800.90 -> L 28759.60: the take-profit is reached first
        fills = v.exchange.user_trades(BTC)
        assert fills[-1].price == D("28797.0")  # 28800.0 - 1 bp - 0.057 impact, down
        statuses = [a.status for a in (v.exchange.query_algo_order(algo_id=1), v.exchange.query_algo_order(algo_id=2))]
        assert statuses == [AlgoStatus.FINISHED, AlgoStatus.CANCELED]

    def test_stop_limit_places_a_resting_limit(self, long_venue, btc):
        v = long_venue
        algo(v, Side.SELL, OrderType.STOP, "28770.0", price=D("28760.0"))
        v.candle(btc[1])  # triggers at 28770; a sell limit at 28760 is marketable there: takes at 28767.0
        assert v.exchange.positions() == []
        assert v.exchange.user_trades(BTC)[-1].price == D("28767.0")
        algo(v, Side.BUY, OrderType.STOP, "28790.0", price=D("28780.0"))
        v.candle(btc[2])  # O 28764.30 L 28764.30 H 28797.90: triggers at 28790, limit 28780 below: rests
        [child] = v.exchange.open_orders(BTC)
        assert (child.order_type, child.price, child.stop_price) == (OrderType.LIMIT, D("28780.0"), D("28790.0"))
        assert v.exchange.query_algo_order(algo_id=2).status is AlgoStatus.TRIGGERED
        v.exchange.cancel_order(BTC, order_id=child.order_id)
        assert v.exchange.query_algo_order(algo_id=2).status is AlgoStatus.FINISHED

    def test_opening_stop_without_margin_is_rejected(self, make_venue, btc):
        venue = make_venue(balance=D("20"))
        venue.candle(btc[0])
        algo(venue, Side.BUY, OrderType.STOP_MARKET, "28800.0", quantity="0.100")
        venue.candle(btc[1])
        state = venue.exchange.query_algo_order(algo_id=1)
        assert (state.status, state.reject_reason) == (AlgoStatus.REJECTED, "Margin is insufficient.")

    def test_cancel_and_query(self, long_venue):
        v = long_venue
        first = algo(v, Side.SELL, OrderType.STOP_MARKET, "28700.0", client_algo_id="a")
        algo(v, Side.SELL, OrderType.STOP_MARKET, "28600.0")
        cancelled = v.exchange.cancel_algo_order(client_algo_id="a")
        assert cancelled.status is AlgoStatus.CANCELED and v.events[-1]["o"]["X"] == "CANCELED"
        assert code_of(v.exchange.cancel_algo_order, algo_id=first.algo_id) == (-2011, "Unknown order sent.")
        assert code_of(v.exchange.cancel_algo_order, algo_id=999)[0] == -2011
        assert code_of(v.exchange.query_algo_order, algo_id=999) == (-2013, "Order does not exist.")
        assert code_of(v.exchange.cancel_algo_order)[0] == -1102
        assert [a.status for a in v.exchange.cancel_all_algo_orders(BTC)] == [AlgoStatus.CANCELED]
        assert v.exchange.open_algo_orders() == []


class TestWorkingType:
    def test_mark_price_stop_follows_the_feed_not_the_candles(self, long_venue, btc):
        v = long_venue
        v.mark(BTC, D("28790.00"))
        algo(v, Side.SELL, OrderType.STOP_MARKET, "28770.0", quantity=None, close_position=True,
             working_type=WorkingType.MARK_PRICE)
        v.candle(btc[1])  # trades through 28770, but the mark has not moved
        assert v.exchange.positions()[0].amount == D("0.010")
        v.mark(BTC, D("28769.00"))
        assert v.exchange.positions() == []
        # Executed at the last traded price less slippage (28761.424) and impact (0.057), down to the tick.
        assert v.exchange.user_trades(BTC)[-1].price == D("28761.3")

    def test_mark_price_stop_without_a_feed_uses_the_candles(self, long_venue, btc):
        v = long_venue
        algo(v, Side.SELL, OrderType.STOP_MARKET, "28770.0", quantity=None, close_position=True,
             working_type=WorkingType.MARK_PRICE)
        v.candle(btc[1])
        assert v.exchange.positions() == []

    def test_hedge_mode_close_position(self, make_venue, btc):
        venue = make_venue()
        venue.exchange.set_position_mode(True)
        venue.candle(btc[0])
        market(venue, Side.SELL, "0.010", position_side=PositionSide.SHORT)
        assert code_of(algo, venue=venue, side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger="28700.0",
                       quantity=None, close_position=True, position_side=PositionSide.SHORT)[0] == -2022
        algo(venue, Side.BUY, OrderType.STOP_MARKET, "28800.0", quantity=None, close_position=True,
             position_side=PositionSide.SHORT)
        venue.candle(btc[1])
        assert venue.exchange.positions() == []


def test_algo_update_has_binance_fields(long_venue, btc, payloads_dir: Path):
    reference = json.loads((payloads_dir / "uds_algo_update.json").read_text())
    algo(long_venue, Side.SELL, OrderType.STOP_MARKET, "28770.0", reduce_only=True)
    market(long_venue, Side.SELL, reduce_only=True)
    long_venue.candle(btc[1])
    event = long_venue.events[-1]
    assert event.keys() == reference.keys() and event["o"].keys() == reference["o"].keys()
    assert isinstance(event["o"]["ai"], str) and event["o"]["at"] == "CONDITIONAL"
    assert TimeInForce(event["o"]["f"]) is TimeInForce.GTC
