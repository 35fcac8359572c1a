"""The fill model against real BTCUSDT/LTCUSDT 1m candles: prices, fees, partial fills, path order, no look-ahead."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from simulator.engine import SimConfig
from simulator.matching import (
    average_impact,
    candle_path,
    first_reach,
    marginal_impact,
    price_at,
    taker_price,
    volume_cap,
)
from utils.domain import OrderStatus, OrderType, Side, TimeInForce
from utils.errors import BinanceError

pytestmark = pytest.mark.shared_data

BTC = "BTCUSDT"


def limit(venue, side, price, quantity="0.010", symbol=BTC, **kwargs):
    return venue.exchange.new_order(symbol=symbol, side=side, order_type=OrderType.LIMIT, quantity=D(quantity),
                                    price=D(price), time_in_force=TimeInForce.GTC, **kwargs)


def market(venue, side, quantity="0.010", symbol=BTC, **kwargs):
    return venue.exchange.new_order(symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=D(quantity),
                                    **kwargs)


class TestTakerPrices:
    def test_market_orders_pay_slippage_and_impact_rounded_against_them(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])  # close 28795.30, range 28781.20..28801.40, 638.803 BTC traded
        buy = market(venue, Side.BUY)
        sell = market(venue, Side.SELL)
        # Impact of 0.010 of 638.803: 10 bp x 2/3 x sqrt(0.010 / 638.803) = 0.0000026377 (each side its own).
        # 28795.30 x (1 + 0.0001 + 0.0000026377) = 28798.2556 -> up to the 0.1 tick;
        # 28795.30 x (1 - 0.0001 - 0.0000026377) = 28792.3445 -> down.
        assert buy.avg_price == D("28798.3") and sell.avg_price == D("28792.3")
        fills = venue.exchange.user_trades(BTC)
        assert [f.commission for f in fills] == [D("0.14399150"), D("0.14396150")]  # 0.05 % taker
        assert not any(f.maker for f in fills)
        assert fills[1].realized_pnl == D("-0.06000000")

    def test_slippage_never_leaves_the_candle_but_impact_does(self, make_venue, btc):
        venue = make_venue(config=SimConfig(impact_bps=D("0")))
        venue.candles(btc[:3])  # candle 2 closed at its high, 28797.90 (330.466 BTC traded)
        assert market(venue, Side.BUY).avg_price == btc[2].high
        venue = make_venue()
        venue.candles(btc[:3])
        # 28797.90 x (1 + 10 bp x 2/3 x sqrt(0.010 / 330.466)) = 28798.0056 -> up to the tick
        assert market(venue, Side.BUY).avg_price == D("28798.1")

    def test_slippage_and_impact_are_configurable(self, make_venue, btc):
        venue = make_venue(config=SimConfig(slippage_bps=D("0"), impact_bps=D("0")))
        venue.candle(btc[0])
        assert market(venue, Side.BUY).avg_price == D("28795.3")
        venue = make_venue(config=SimConfig(slippage_bps=D("0")))  # 0.0000026377 impact alone: 28795.376
        venue.candle(btc[0])
        assert market(venue, Side.BUY).avg_price == D("28795.4")

    def test_fees_are_configurable(self, make_venue, btc):
        venue = make_venue(config=SimConfig(taker_fee_rate=D("0.0004"), maker_fee_rate=D("0")))
        venue.candle(btc[0])
        market(venue, Side.BUY)
        limit(venue, Side.SELL, "28800.0")
        venue.candle(btc[1])  # high 28800.90 trades through 28800.0
        # 28798.3 x 0.010 x 0.0004, then the maker fill free
        assert [f.commission for f in venue.exchange.user_trades(BTC)] == [D("0.11519320"), D("0")]


class TestImpactAndVolumeCap:
    def test_a_huge_market_order_fills_what_one_candle_allows_and_expires_the_rest(self, make_venue, btc_january):
        # 2023-01-05 05:42 traded 4.998 BTC between 16836.90 and 16837.00 and closed at 16836.90.
        quiet = btc_january[6102]
        assert (quiet.volume, quiet.low, quiet.high, quiet.close) == (D("4.998"), D("16836.90"), D("16837.00"),
                                                                      D("16836.90"))
        venue = make_venue(balance=D("1000000"))
        venue.candle(quiet)
        order = market(venue, Side.BUY, "900.000")
        # Cap: 10 % of 4.998 -> 0.499. Slippage: 16836.90 x 1.0001, kept inside the candle -> 16837.00. Impact of
        # 0.499 of 4.998: 10 bp x 2/3 x sqrt(0.499 / 4.998) = 0.00021065 -> 16840.547, up to the tick: 16840.6,
        # 4.2 bp above the close (not 900 BTC at the close +- 1 bp).
        assert (order.status, order.executed_quantity, order.avg_price) == (OrderStatus.EXPIRED, D("0.499"),
                                                                            D("16840.6"))
        assert [(u["x"], u["X"], u["l"]) for u in venue.order_updates(order.client_order_id)] == [
            ("NEW", "NEW", "0"), ("TRADE", "PARTIALLY_FILLED", "0.499"), ("EXPIRED", "EXPIRED", "0")]
        assert venue.exchange.positions()[0].amount == D("0.499")

    def test_orders_sent_between_two_candles_share_the_cap_and_walk_further(self, make_venue, btc):
        venue = make_venue(config=SimConfig(max_volume_fraction=D("0.001")), balance=D("100000"))
        venue.candle(btc[0])  # 638.803 BTC: the cap is 0.638 per side until the next candle
        first = market(venue, Side.BUY, "0.300")
        second = market(venue, Side.BUY, "0.300")
        third = market(venue, Side.BUY, "0.300")  # only 0.038 left
        sell = market(venue, Side.SELL, "0.300")  # the other side of the book has its own share
        assert [o.executed_quantity for o in (first, second, third, sell)] == [D("0.3"), D("0.3"), D("0.038"),
                                                                                D("0.3")]
        assert first.avg_price < second.avg_price <= third.avg_price  # the second walks from 0.3 to 0.6
        assert third.status is OrderStatus.EXPIRED and second.status is OrderStatus.FILLED
        venue.candle(btc[1])  # a new candle, a new share: 1128.514 BTC -> 1.128
        assert market(venue, Side.BUY, "1.000").status is OrderStatus.FILLED

    def test_impact_grows_with_the_square_root_of_the_share_taken(self, make_venue, btc):
        prices = []
        for size in ("0.100", "0.400", "1.600", "6.400"):
            venue = make_venue(config=SimConfig(slippage_bps=D("0")), balance=D("1000000"))
            venue.candle(btc[0])
            prices.append(market(venue, Side.BUY, size).avg_price - btc[0].close)
        # quadrupling the size doubles the impact: 0.240, 0.480, 0.961, 1.922 USDT, then up to the 0.1 tick
        assert prices == [D("0.3"), D("0.5"), D("1.0"), D("2.0")]


class TestRestingLimits:
    def test_fill_at_the_limit_as_maker_when_traded_through(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        order = limit(venue, Side.BUY, "28770.0")
        venue.candle(btc[1])  # low 28759.60
        fill = venue.exchange.user_trades(BTC)[0]
        assert (fill.price, fill.maker, fill.commission) == (D("28770.0"), True, D("0.05754000"))
        assert fill.time == btc[1].close_time
        assert venue.exchange.query_order(BTC, order_id=order.order_id).status is OrderStatus.FILLED

    def test_a_touch_is_not_a_fill_by_default(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        limit(venue, Side.BUY, str(btc[1].low))  # exactly the next candle's low
        venue.candle(btc[1])
        assert venue.exchange.user_trades(BTC) == []
        assert len(venue.exchange.open_orders()) == 1

    def test_fill_on_touch_when_configured(self, make_venue, btc):
        venue = make_venue(config=SimConfig(fill_on_touch=True))
        venue.candle(btc[0])
        limit(venue, Side.BUY, str(btc[1].low))
        venue.candle(btc[1])
        assert venue.exchange.user_trades(BTC)[0].price == btc[1].low

    def test_gap_down_fills_a_resting_buy_at_its_limit_never_better(self, make_venue, btc):
        # 2023-04-20 21:07: the previous minute closed at 28230.40, this one never traded above 28230.20. The
        # bid was resting: the sellers who gapped the price down hit it at its own price.
        venue = make_venue()
        venue.candles(btc[1265:1267])
        limit(venue, Side.BUY, "28230.3")
        venue.candle(btc[1267])
        fill = venue.exchange.user_trades(BTC)[0]
        assert btc[1267].high == D("28230.20")
        assert fill.price == D("28230.3") and fill.maker
        assert fill.commission == D("0.05646060")  # 28230.3 x 0.010 x 0.02 % maker

    def test_gap_up_fills_a_resting_sell_at_its_limit_never_better(self, make_venue, btc):
        venue = make_venue()
        venue.candles(btc[1351:1353])
        limit(venue, Side.SELL, "28214.9")
        venue.candle(btc[1353])
        assert btc[1353].low == D("28215.00")
        assert venue.exchange.user_trades(BTC)[0].price == D("28214.9")

    def test_partial_fills_take_a_share_of_each_candles_volume(self, make_venue, btc):
        venue = make_venue(config=SimConfig(max_volume_fraction=D("0.0001")), balance=D("1000000"))
        venue.candle(btc[0])
        order = limit(venue, Side.SELL, "28796.0", quantity="0.200")  # the next candles trade above it
        venue.candles(btc[1:4])
        fills = venue.exchange.user_trades(BTC)
        # 1128.514, 330.466, 245.385 BTC traded: 0.0001 of each, down to the 0.001 step.
        assert [f.quantity for f in fills] == [D("0.112"), D("0.033"), D("0.024")]
        assert all(f.price == D("28796.0") and f.maker for f in fills)
        state = venue.exchange.query_order(BTC, order_id=order.order_id)
        assert state.status is OrderStatus.PARTIALLY_FILLED and state.executed_quantity == D("0.169")
        statuses = [u["X"] for u in venue.order_updates(order.client_order_id)]
        assert statuses == ["NEW", "PARTIALLY_FILLED", "PARTIALLY_FILLED", "PARTIALLY_FILLED"]
        venue.candle(btc[4])
        assert venue.exchange.query_order(BTC, order_id=order.order_id).status is OrderStatus.FILLED

    def test_resting_orders_share_a_candles_volume(self, make_venue, btc):
        venue = make_venue(config=SimConfig(max_volume_fraction=D("0.0001")), balance=D("1000000"))
        venue.candle(btc[0])
        first = limit(venue, Side.SELL, "28796.0", quantity="0.100")
        second = limit(venue, Side.SELL, "28796.0", quantity="0.100")
        venue.candle(btc[1])  # cap 0.112 for both together, oldest first
        fills = venue.exchange.user_trades(BTC)
        assert [(f.order_id, f.quantity) for f in fills] == [(first.order_id, D("0.100")),
                                                             (second.order_id, D("0.012"))]

    def test_reduce_only_order_expires_when_nothing_is_left_to_reduce(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        market(venue, Side.BUY)
        take_profit = limit(venue, Side.SELL, "28799.0", reduce_only=True)
        market(venue, Side.SELL, reduce_only=True)  # closed by hand first
        venue.candle(btc[1])  # high 28800.90 would have filled it
        state = venue.exchange.query_order(BTC, order_id=take_profit.order_id)
        assert state.status is OrderStatus.EXPIRED and state.executed_quantity == 0
        assert venue.order_updates(take_profit.client_order_id)[-1]["x"] == "EXPIRED"


class TestPathOrder:
    def test_bullish_candle_trades_its_low_before_its_high(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[1])
        sell = limit(venue, Side.SELL, "28797.0")
        buy = limit(venue, Side.BUY, "28764.4")  # candle 2: O 28764.30 (already below) ... H 28797.90
        venue.candle(btc[2])
        assert [f.order_id for f in venue.exchange.user_trades(BTC)] == [buy.order_id, sell.order_id]

    def test_bearish_candle_trades_its_high_before_its_low(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        buy = limit(venue, Side.BUY, "28770.0")
        sell = limit(venue, Side.SELL, "28800.0")
        venue.candle(btc[1])  # bearish: O 28795.20 -> H 28800.90 -> L 28759.60 -> C 28764.30
        assert [f.order_id for f in venue.exchange.user_trades(BTC)] == [sell.order_id, buy.order_id]

    def test_path_helpers(self, btc):
        path = candle_path(btc[1])
        assert path == (btc[1].open, btc[1].high, btc[1].low, btc[1].close)
        key = first_reach(path, D("28770.0"), falling=True)
        assert key[0] == 1 and price_at(path, key) == D("28770.0")
        assert first_reach(path, D("28900.0"), falling=False) is None
        assert first_reach(path, D("28759.60"), falling=True, strict=True) is None
        assert first_reach(path, D("28795.20"), falling=True) == (0, D(0))
        assert taker_price(D("100.00"), True, D("0.0001"), D("0.01"), D("99"), D("101")) == D("100.01")
        assert taker_price(D("100.00"), False, D("0.0001"), D("0.01"), D("99"), D("101"), D("0.002")) == D("99.79")
        assert volume_cap(D("638.803"), D("0.1"), D("0.001")) == D("63.880")
        # Square-root impact: a whole candle's volume costs impact x 2/3 on average, its last unit impact x 1.
        close = D("1e-19")  # computed with 16 significant digits
        assert abs(average_impact(D("0.001"), D(0), D(100), D(100)) - D("0.001") * 2 / 3) < close
        assert marginal_impact(D("0.001"), D(100), D(100)) == D("0.001")
        # Taking 75 after 25 of 100 costs what the walk from 25 to 100 costs: 2/3 x (1 - 0.125) / 0.75 x impact.
        walk = D("0.001") * 2 * (1 - D("0.125")) / (3 * D("0.75"))
        assert abs(average_impact(D("0.001"), D(25), D(75), D(100)) - walk) < close
        assert average_impact(D("0.001"), D(0), D(1), D(0)) == 0  # no volume, no model: the cap lets nothing in


class TestNoLookAhead:
    def test_feeding_a_candle_before_its_close_is_refused(self, make_venue, btc):
        venue = make_venue(start_ms=btc[0].open_time)
        with pytest.raises(ValueError, match="would see the future"):
            venue.exchange.on_candle(btc[0])

    def test_candles_must_move_forward_and_be_closed(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[1])
        with pytest.raises(ValueError, match="not after"):
            venue.candle(btc[0])
        with pytest.raises(ValueError, match="not closed"):
            venue.candle(dataclasses.replace(btc[2], closed=False))
        with pytest.raises(BinanceError) as caught:
            venue.candle(dataclasses.replace(btc[2], symbol="XRPUSDT"))
        assert caught.value.code == -1121

    def test_an_order_placed_inside_a_candle_waits_for_the_next(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        venue.clock.set(btc[1].open_time + 30_000)  # half-way through minute 1
        order = limit(venue, Side.BUY, "28770.0")
        venue.candle(btc[1])  # traded down to 28759.60, partly before the order existed
        assert venue.exchange.user_trades(BTC) == []
        venue.candles(btc[2:30])
        lows = [c.low for c in btc[2:30]]
        fills = venue.exchange.user_trades(BTC)
        assert (len(fills) == 1) == (min(lows) < D("28770.0"))
        if fills:
            assert fills[0].order_id == order.order_id

    def test_an_order_placed_at_the_close_can_fill_on_the_next_candle(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])  # clock at 00:00:59.999
        limit(venue, Side.BUY, "28770.0")
        venue.clock.set(btc[1].open_time)  # or exactly at the next open
        limit(venue, Side.BUY, "28765.0")
        venue.candle(btc[1])
        assert [f.price for f in venue.exchange.user_trades(BTC)] == [D("28770.0"), D("28765.0")]

    def test_prices_update_only_from_closed_candles(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        assert venue.exchange.last_price(BTC) == venue.exchange.mark_price(BTC) == D("28795.30")


class TestAcrossSymbols:
    def test_symbols_match_independently(self, make_venue, week_candles):
        venue = make_venue()
        for symbol in ("BTCUSDT", "ETHUSDT", "LTCUSDT"):
            venue.candle(week_candles[symbol][0])
        market(venue, Side.BUY, "0.010", symbol="ETHUSDT")
        market(venue, Side.SELL, "1.000", symbol="LTCUSDT")
        assert {p.symbol: p.amount for p in venue.exchange.positions()} == {"ETHUSDT": D("0.010"),
                                                                         "LTCUSDT": D("-1.000")}
        assert venue.exchange.last_price("ETHUSDT") == week_candles["ETHUSDT"][0].close
