"""Order intake: every rejection with Binance's code and message, time-in-force rules, cancel/query/open orders."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from simulator.engine import SimConfig
from utils.domain import OrderStatus, OrderType, PositionSide, Side, TimeInForce
from utils.errors import BinanceError

pytestmark = pytest.mark.shared_data

BTC = "BTCUSDT"
GTC = TimeInForce.GTC


def rejects(code: int, message: str | None, call, **kwargs) -> BinanceError:
    with pytest.raises(BinanceError) as caught:
        call(**kwargs)
    assert caught.value.code == code, caught.value.msg
    if message is not None:
        assert caught.value.msg == message
    return caught.value


@pytest.fixture
def venue(make_venue, btc):
    """An exchange that has seen the first BTCUSDT candle of the week (close 28795.30, high 28801.40)."""
    venue = make_venue()
    venue.candle(btc[0])
    return venue


def limit(venue, side=Side.BUY, price="28000.0", quantity="0.010", tif=GTC, **kwargs):
    return venue.exchange.new_order(symbol=BTC, side=side, order_type=OrderType.LIMIT, quantity=D(quantity),
                                    price=D(price), time_in_force=tif, **kwargs)


def market(venue, side=Side.BUY, quantity="0.010", **kwargs):
    return venue.exchange.new_order(symbol=BTC, side=side, order_type=OrderType.MARKET, quantity=D(quantity), **kwargs)


class TestParameters:
    def test_unknown_symbol(self, venue):
        rejects(-1121, "Invalid symbol.", venue.exchange.new_order, symbol="DOGEUSDT", side=Side.BUY,
                order_type=OrderType.MARKET, quantity=D(1))

    @pytest.mark.parametrize("order_type", [OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT,
                                            OrderType.TAKE_PROFIT_MARKET, OrderType.TRAILING_STOP_MARKET])
    def test_conditional_orders_belong_to_the_algo_api(self, venue, order_type):
        rejects(-4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
                venue.exchange.new_order, symbol=BTC, side=Side.SELL, order_type=order_type, quantity=D("0.01"),
                price=D("28000"), time_in_force=GTC)

    def test_liquidation_type_cannot_be_sent(self, venue):
        rejects(-1116, "Invalid orderType.", venue.exchange.new_order, symbol=BTC, side=Side.SELL,
                order_type=OrderType.LIQUIDATION, quantity=D("0.01"))

    def test_mandatory_parameters(self, venue):
        ex = venue.exchange
        rejects(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
                ex.new_order, symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET)
        rejects(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
                ex.new_order, symbol=BTC, side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.01"),
                price=D("28000"))
        rejects(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
                ex.new_order, symbol=BTC, side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.01"),
                time_in_force=GTC)

    def test_price_on_a_market_order(self, venue):
        rejects(-1106, "Parameter 'price' sent when not required.", venue.exchange.new_order, symbol=BTC,
                side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.01"), price=D("28000"))

    def test_gtd_is_not_supported(self, venue):
        rejects(-1115, "Invalid timeInForce.", limit, venue=venue, tif=TimeInForce.GTD)

    def test_strings_are_accepted_for_enums(self, venue):
        order = venue.exchange.new_order(symbol=BTC, side="BUY", order_type="LIMIT", quantity=D("0.01"),
                                         price=D("28000"), time_in_force="GTC", position_side="BOTH")
        assert order.side is Side.BUY and order.status is OrderStatus.NEW


class TestFilters:
    @pytest.mark.parametrize("quantity, code, message", [
        ("0", -4003, None), ("-0.001", -4003, None),
        ("0.0001", -1111, "Precision is over the maximum defined for this asset."),
        ("1001", -4005, "Quantity greater than max quantity."),
    ])
    def test_quantity(self, venue, quantity, code, message):
        rejects(code, message, limit, venue=venue, quantity=quantity)

    def test_quantity_below_minimum(self, make_venue, btc, symbol_filters):
        filters = dataclasses.replace(symbol_filters[BTC], lot=dataclasses.replace(
            symbol_filters[BTC].lot, min_qty=D("0.010")))
        venue = make_venue(filters={BTC: filters})
        venue.candle(btc[0])
        rejects(-4004, "Quantity less than min quantity.", limit, venue=venue, quantity="0.005")

    def test_quantity_step(self, make_venue, btc, symbol_filters):
        filters = dataclasses.replace(symbol_filters[BTC], lot=dataclasses.replace(
            symbol_filters[BTC].lot, step_size=D("0.002")))
        venue = make_venue(filters={BTC: filters})
        venue.candle(btc[0])
        rejects(-4023, "Qty not increased by step size.", limit, venue=venue, quantity="0.004")

    def test_market_orders_use_market_lot_size(self, make_venue, btc, symbol_filters):
        filters = dataclasses.replace(symbol_filters[BTC], market_lot=dataclasses.replace(
            symbol_filters[BTC].market_lot, max_qty=D("0.5")))
        venue = make_venue(filters={BTC: filters})
        venue.candle(btc[0])
        rejects(-4005, "Quantity greater than max quantity.", market, venue=venue, quantity="0.6")
        assert limit(venue, quantity="0.6").status is OrderStatus.NEW  # LOT_SIZE allows it

    @pytest.mark.parametrize("price, code, message", [
        ("28000.005", -1111, "Precision is over the maximum defined for this asset."),
        ("28000.15", -4014, "Price not increased by tick size."),
        ("401.0", -4013, "Price less than min price."),
        ("1246396.70", -4002, "Price greater than max price."),
    ])
    def test_price(self, venue, price, code, message):
        rejects(code, message, limit, venue=venue, price=price, quantity="0.001")

    def test_tick_size(self, venue, symbol_filters):
        # pricePrecision is 2 but the tick is 0.10: 28000.01 has allowed precision, wrong tick.
        rejects(-4014, "Price not increased by tick size.", limit, venue=venue, price="28000.01")

    def test_percent_price_checks_only_the_sides_own_bound(self, venue):
        # mark = close 28795.30; BTCUSDT multipliers 1.1 / 0.5454. USD-M: BUY price <= mark x multiplierUp,
        # SELL price >= mark x multiplierDown; a buy has no floor and a sell no ceiling.
        rejects(-4016, "Limit price can't be higher than 31674.8.", limit, venue=venue, price="31675.0")
        rejects(-4024, "Limit price can't be lower than 15705.", limit, venue=venue, side=Side.SELL,
                price="15704.9")
        deep_bid = limit(venue, price="15704.9")
        wide_take_profit = limit(venue, side=Side.SELL, price="31675.0")
        assert deep_bid.status is wide_take_profit.status is OrderStatus.NEW

    def test_min_notional_unless_reduce_only(self, make_venue, ltc):
        venue = make_venue()
        venue.candle(ltc[0])  # LTCUSDT close 90.22, MIN_NOTIONAL 5
        ex = venue.exchange
        rejects(-4164, "Order's notional must be no smaller than 5 (unless you choose reduce only).",
                ex.new_order, symbol="LTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.05"),
                price=D("90.00"), time_in_force=GTC)
        rejects(-4164, None, ex.new_order, symbol="LTCUSDT", side=Side.BUY, order_type=OrderType.MARKET,
                quantity=D("0.05"))
        ex.new_order(symbol="LTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.1"))
        order = ex.new_order(symbol="LTCUSDT", side=Side.SELL, order_type=OrderType.LIMIT, quantity=D("0.05"),
                             price=D("91.00"), time_in_force=GTC, reduce_only=True)
        assert order.status is OrderStatus.NEW

    def test_a_market_orders_min_notional_is_valued_at_the_mark(self, make_venue, ltc):
        venue = make_venue()
        venue.candle(ltc[0])  # LTCUSDT close 90.22, MIN_NOTIONAL 5: 0.05 x 90.22 = 4.511
        ex = venue.exchange
        venue.mark("LTCUSDT", D("110.00"))  # the mark, not the last price: 0.05 x 110 = 5.5
        order = ex.new_order(symbol="LTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.05"))
        assert order.status is OrderStatus.FILLED
        venue.mark("LTCUSDT", D("99.00"))  # 0.05 x 99 = 4.95
        rejects(-4164, None, ex.new_order, symbol="LTCUSDT", side=Side.BUY, order_type=OrderType.MARKET,
                quantity=D("0.05"))

    def test_max_open_orders(self, make_venue, btc, symbol_filters):
        venue = make_venue(filters={BTC: dataclasses.replace(symbol_filters[BTC], max_num_orders=2)})
        venue.candle(btc[0])
        limit(venue)
        limit(venue)
        rejects(-2025, "Reach max open order limit.", limit, venue=venue)


class TestPositionSideAndReduceOnly:
    def test_one_way_rejects_long_short(self, venue):
        rejects(-4061, "Order's position side does not match user's setting.", market, venue=venue,
                position_side=PositionSide.LONG)

    def test_hedge_mode_rejects_both_and_reduce_only(self, venue):
        venue.exchange.set_position_mode(True)
        rejects(-4061, "Order's position side does not match user's setting.", market, venue=venue)
        rejects(-1106, "Parameter 'reduceonly' sent when not required.", market, venue=venue,
                position_side=PositionSide.LONG, reduce_only=True)

    def test_reduce_only_that_would_open(self, venue):
        rejects(-2022, "ReduceOnly Order is rejected.", market, venue=venue, side=Side.SELL, reduce_only=True)

    def test_reduce_only_that_would_increase(self, venue):
        market(venue, side=Side.BUY, quantity="0.010")
        rejects(-2022, "ReduceOnly Order is rejected.", market, venue=venue, side=Side.BUY, reduce_only=True)

    def test_reduce_only_market_larger_than_position_closes_it_and_expires_the_rest(self, venue):
        market(venue, side=Side.BUY, quantity="0.010")
        order = market(venue, side=Side.SELL, quantity="0.030", reduce_only=True)
        assert order.status is OrderStatus.EXPIRED and order.executed_quantity == D("0.010")
        assert venue.exchange.positions() == []

    def test_hedge_close_beyond_position(self, venue):
        venue.exchange.set_position_mode(True)
        market(venue, side=Side.BUY, quantity="0.010", position_side=PositionSide.LONG)
        rejects(-2022, "ReduceOnly Order is rejected.", market, venue=venue, side=Side.SELL, quantity="0.011",
                position_side=PositionSide.LONG)
        limit(venue, side=Side.SELL, price="29000.0", quantity="0.006", position_side=PositionSide.LONG)
        # 0.006 already waits to close the long: another 0.005 would close more than there is.
        rejects(-2022, None, limit, venue=venue, side=Side.SELL, price="29100.0", quantity="0.005",
                position_side=PositionSide.LONG)
        rejects(-2022, None, market, venue=venue, side=Side.BUY, position_side=PositionSide.SHORT)


class TestClientOrderId:
    def test_invalid(self, venue):
        rejects(-4015, "Client order id is not valid.", limit, venue=venue, client_order_id="has space")
        rejects(-4015, None, limit, venue=venue, client_order_id="x" * 37)

    def test_duplicate_among_open_orders_only(self, venue):
        limit(venue, client_order_id="bot-1")
        rejects(-4116, "ClientOrderId is duplicated.", limit, venue=venue, client_order_id="bot-1")
        venue.exchange.cancel_order(BTC, client_order_id="bot-1")
        assert limit(venue, client_order_id="bot-1").status is OrderStatus.NEW

    def test_generated_ids_are_binance_like_and_seeded(self, make_venue, btc):
        ids = []
        for _ in range(2):
            venue = make_venue(config=SimConfig(seed=7))
            venue.candle(btc[0])
            ids.append([limit(venue).client_order_id for _ in range(3)])
        assert ids[0] == ids[1]
        assert all(len(i) == 22 and i.isalnum() for i in ids[0]) and len(set(ids[0])) == 3


class TestMarginCheck:
    def test_margin_insufficient(self, make_venue, btc):
        venue = make_venue(balance=D("100"))
        venue.candle(btc[0])
        # 20x: 0.07 BTC at ~28798 needs ~100.8 USDT of initial margin.
        rejects(-2019, "Margin is insufficient.", market, venue=venue, quantity="0.070")
        assert market(venue, quantity="0.060").status is OrderStatus.FILLED

    def test_resting_orders_hold_margin(self, make_venue, btc):
        venue = make_venue(balance=D("100"))
        venue.candle(btc[0])
        limit(venue, price="28000.0", quantity="0.060")  # holds 84 USDT
        rejects(-2019, None, limit, venue=venue, price="28000.0", quantity="0.020")
        # A sell first closes nothing but may open a short: one-way takes the larger side, so it fits.
        assert limit(venue, side=Side.SELL, price="29000.0", quantity="0.060").status is OrderStatus.NEW

    def test_closing_orders_need_no_margin(self, make_venue, btc):
        venue = make_venue(balance=D("100"))
        venue.candle(btc[0])
        market(venue, quantity="0.060")
        assert market(venue, side=Side.SELL, quantity="0.060", reduce_only=True).status is OrderStatus.FILLED

    def test_bracket_cap(self, make_venue, btc):
        from simulator.account import parse_leverage_brackets
        brackets = parse_leverage_brackets([{"symbol": BTC, "brackets": [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 1000, "notionalFloor": 0,
             "maintMarginRatio": 0.004, "cum": 0},
            {"bracket": 2, "initialLeverage": 20, "notionalCap": 100000, "notionalFloor": 1000,
             "maintMarginRatio": 0.025, "cum": 21}]}])
        venue = make_venue(config=SimConfig(leverage_brackets=brackets))
        venue.candle(btc[0])
        venue.exchange.set_leverage(BTC, 100)
        rejects(-2027, "Exceeded the maximum allowable position at current leverage.", market, venue=venue,
                quantity="0.040")
        assert market(venue, quantity="0.030").status is OrderStatus.FILLED


class TestMarketPercentPrice:
    def test_market_execution_beyond_the_mark_band(self, venue):
        venue.mark(BTC, D("20000"))  # the last trade (28795.30) is far above 1.1 x the mark
        rejects(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit.", market,
                venue=venue)


class TestTimeInForce:
    def test_market_without_any_price(self, make_venue):
        rejects(-2020, "Unable to fill.", market, venue=make_venue())

    def test_gtx_that_would_take(self, venue):
        message = ("Due to the order could not be executed as maker, the Post Only order will be rejected. "
                   "The order will not be recorded in the order book.")
        rejects(-5022, message, limit, venue=venue, price="28795.3", tif=TimeInForce.GTX)
        rejects(-5022, message, limit, venue=venue, side=Side.SELL, price="28795.3", tif=TimeInForce.GTX)
        assert limit(venue, price="28795.2", tif=TimeInForce.GTX).status is OrderStatus.NEW

    def test_fok(self, venue):
        message = ("Due to the order could not be filled immediately, the FOK order has been rejected. "
                   "The order will not be recorded in the order book.")
        rejects(-5021, message, limit, venue=venue, price="28700.0", tif=TimeInForce.FOK)  # not marketable
        # Volume cap: 10 % of the last candle's 638.803 BTC is 63.880.
        rejects(-5021, message, limit, venue=venue, price="28900.0", quantity="63.881", tif=TimeInForce.FOK)
        order = limit(venue, price="28900.0", quantity="0.010", tif=TimeInForce.FOK)
        assert order.status is OrderStatus.FILLED and order.avg_price == D("28798.3")  # slippage + impact

    def test_ioc_fills_what_it_can_and_expires_the_rest(self, make_venue, btc):
        venue = make_venue(config=SimConfig(max_volume_fraction=D("0.0001")), balance=D("1000000"))
        venue.candle(btc[0])
        order = limit(venue, price="28900.0", quantity="0.100", tif=TimeInForce.IOC)
        assert order.status is OrderStatus.EXPIRED and order.executed_quantity == D("0.063")
        updates = venue.order_updates(order.client_order_id)
        assert [(u["x"], u["X"]) for u in updates] == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"),
                                                       ("EXPIRED", "EXPIRED")]

    def test_ioc_that_cannot_fill_expires(self, venue):
        order = limit(venue, price="28000.0", tif=TimeInForce.IOC)
        assert order.status is OrderStatus.EXPIRED and order.executed_quantity == 0
        assert venue.exchange.open_orders() == []

    def test_marketable_gtc_takes_then_rests_and_its_remainder_still_takes_at_its_limit(self, make_venue, btc):
        venue = make_venue(config=SimConfig(max_volume_fraction=D("0.0001")), balance=D("1000000"))
        venue.candle(btc[0])
        order = limit(venue, price="28900.0", quantity="0.100")
        assert order.status is OrderStatus.PARTIALLY_FILLED and order.executed_quantity == D("0.063")
        assert [o.order_id for o in venue.exchange.open_orders(BTC)] == [order.order_id]
        fill = venue.exchange.user_trades(BTC)[0]
        # 28795.30 x 1.0001 x (1 + 10 bp x 2/3 x sqrt(0.063 / 638.803)) = 28798.370 -> 28798.4
        assert not fill.maker and fill.price == D("28798.4")
        venue.candle(btc[1])  # its share of 1128.514 BTC is 0.112: the 0.037 left fills
        remainder = venue.exchange.user_trades(BTC)[1]
        # The remainder is still a taking order: the taker fee, and its own limit, never a better price.
        assert (remainder.quantity, remainder.price, remainder.maker) == (D("0.037"), D("28900.0"), False)
        assert remainder.commission == D("0.53465000")  # 28900.0 x 0.037 x 0.05 %
        assert venue.exchange.query_order(BTC, order_id=order.order_id).status is OrderStatus.FILLED


class TestCancelAndQuery:
    def test_cancel_by_id_and_by_client_id(self, venue):
        first = limit(venue, client_order_id="a")
        second = limit(venue, client_order_id="b")
        assert venue.exchange.cancel_order(BTC, order_id=first.order_id).status is OrderStatus.CANCELED
        assert venue.exchange.cancel_order(BTC, client_order_id="b").status is OrderStatus.CANCELED
        assert venue.exchange.query_order(BTC, order_id=second.order_id).status is OrderStatus.CANCELED
        assert venue.order_updates("a")[-1]["x"] == "CANCELED"

    def test_cancel_unknown_or_finished(self, venue):
        rejects(-2011, "Unknown order sent.", venue.exchange.cancel_order, symbol=BTC, order_id=999)
        filled = market(venue)
        rejects(-2011, "Unknown order sent.", venue.exchange.cancel_order, symbol=BTC, order_id=filled.order_id)
        rejects(-2011, None, venue.exchange.cancel_order, symbol=BTC, client_order_id="nope")
        rejects(-1102, "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!",
                venue.exchange.cancel_order, symbol=BTC)

    def test_cancel_in_the_wrong_symbol(self, venue):
        order = limit(venue)
        rejects(-2011, None, venue.exchange.cancel_order, symbol="ETHUSDT", order_id=order.order_id)

    def test_query(self, venue):
        filled = market(venue, client_order_id="m1")
        assert venue.exchange.query_order(BTC, client_order_id="m1").status is OrderStatus.FILLED
        rejects(-2013, "Order does not exist.", venue.exchange.query_order, symbol=BTC, order_id=12345)
        rejects(-2013, None, venue.exchange.query_order, symbol=BTC, client_order_id="unknown")
        assert venue.exchange.query_order(BTC, order_id=filled.order_id).executed_quantity == D("0.010")

    def test_unfilled_closed_orders_are_forgotten_after_three_days(self, venue):
        order = limit(venue)
        venue.exchange.cancel_order(BTC, order_id=order.order_id)
        filled = market(venue)
        venue.clock.advance(3 * 86_400_000 + 1)
        rejects(-2013, None, venue.exchange.query_order, symbol=BTC, order_id=order.order_id)
        assert venue.exchange.query_order(BTC, order_id=filled.order_id).status is OrderStatus.FILLED

    def test_the_three_days_count_from_the_orders_creation_not_its_cancel(self, venue):
        # Binance: CANCELED or EXPIRED, no filled trade, and created time + 3 days < current time.
        order = limit(venue, client_order_id="late-cancel")
        venue.clock.advance(2 * 86_400_000)
        venue.exchange.cancel_order(BTC, order_id=order.order_id)
        venue.clock.advance(86_400_000)  # exactly 3 days after it was created: still there
        assert venue.exchange.query_order(BTC, order_id=order.order_id).status is OrderStatus.CANCELED
        venue.clock.advance(1)
        rejects(-2013, None, venue.exchange.query_order, symbol=BTC, order_id=order.order_id)
        rejects(-2013, None, venue.exchange.query_order, symbol=BTC, client_order_id="late-cancel")

    def test_cancel_all_and_open_orders(self, venue):
        ids = [limit(venue, price=p).order_id for p in ("28000.0", "28100.0", "28200.0")]
        assert [o.order_id for o in venue.exchange.open_orders()] == ids
        assert [o.order_id for o in venue.exchange.open_orders(BTC)] == ids
        assert venue.exchange.open_orders("ETHUSDT") == []
        cancelled = venue.exchange.cancel_all_orders(BTC)
        assert [o.order_id for o in cancelled] == ids and all(o.status is OrderStatus.CANCELED for o in cancelled)
        assert venue.exchange.open_orders() == []

    def test_returned_orders_are_snapshots(self, venue):
        order = limit(venue)
        order.status = OrderStatus.FILLED
        assert venue.exchange.open_orders()[0].status is OrderStatus.NEW
