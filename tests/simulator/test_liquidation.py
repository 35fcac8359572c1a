"""Liquidation on real crash minutes: LTCUSDT 2023-04-21 19:07 (-4 %) and BTCUSDT/ETHUSDT 2023-04-26 19:39."""

from __future__ import annotations

from decimal import ROUND_FLOOR
from decimal import Decimal as D

import pytest

from simulator.account import bracket_for, maintenance_margin, parse_leverage_brackets
from simulator.engine import SimConfig, SimExchange
from simulator.exchange_info import load_exchange_info, load_leverage_brackets
from utils.clock import SimulatedClock
from utils.domain import Candle, MarginType, OrderStatus, OrderType, Side, TimeInForce

pytestmark = pytest.mark.shared_data

LTC = "LTCUSDT"
CRASH_LTC = 2587  # O 86.93 H 87.04 L 83.50 C 84.64
CRASH_BTC = 9819  # O 28585.90 H 28609.10 L 28158.00 C 28316.00

# Binance's documented first tiers for BTCUSDT (GET /fapi/v1/leverageBracket example).
BRACKETS = parse_leverage_brackets([{"symbol": "BTCUSDT", "brackets": [
    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004,
     "cum": 0},
    {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 50000,
     "maintMarginRatio": 0.005, "cum": 50}]}])


def liquidations(venue) -> list[dict]:
    return [u for u in venue.order_updates() if u["o"] == "LIQUIDATION"]


def long_ltc_isolated(make_venue, ltc, leverage=25, quantity="10.000"):
    venue = make_venue()
    venue.exchange.set_margin_type(LTC, MarginType.ISOLATED)
    venue.exchange.set_leverage(LTC, leverage)
    venue.candles(ltc[:CRASH_LTC])
    venue.exchange.new_order(symbol=LTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D(quantity))
    return venue


class TestIsolated:
    def test_liquidated_where_margin_meets_maintenance(self, make_venue, ltc):
        venue = long_ltc_isolated(make_venue, ltc)
        [risk] = venue.exchange.position_risk(LTC)
        # Entry 86.93 (86.92 + 1 bp, up to the tick; 10 of 87,840 LTC adds no tick), 25x: 4 % margin; LTCUSDT's
        # first tier (up to 5,000 USDT): 0.5 % maintenance.
        assert risk.entry_price == D("86.93") and risk.isolated_wallet == D("34.772")
        assert risk.maintenance_margin == D("869.2") * D("0.005")  # at the mark, 86.92
        assert risk.liquidation_price == (D("869.3") - D("34.772")) / (D("10") * D("0.995"))  # 83.872
        resting = venue.exchange.new_order(symbol=LTC, side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("1"),
                                           price=D("80.00"), time_in_force=TimeInForce.GTC)
        wallet_before = venue.exchange.account().wallet_balance
        venue.candle(ltc[CRASH_LTC])
        [liquidation] = liquidations(venue)
        expected_price = risk.liquidation_price.quantize(D("0.01"), rounding=ROUND_FLOOR)
        assert liquidation["x"] == "CALCULATED" and liquidation["X"] == "FILLED"
        assert liquidation["c"] == "autoclose-1" and liquidation["S"] == "SELL" and liquidation["R"] is True
        assert D(liquidation["L"]) == expected_price and ltc[CRASH_LTC].low <= expected_price <= ltc[CRASH_LTC].high
        assert venue.exchange.positions() == []
        assert venue.exchange.query_order(LTC, order_id=resting.order_id).status is OrderStatus.CANCELED
        fill = venue.exchange.user_trades(LTC)[-1]
        loss = (expected_price - D("86.93")) * 10
        # The clearance fee (1.25 % of notional) is capped by what is left of the position's margin.
        assert fill.realized_pnl == loss and fill.commission == min(
            (expected_price * 10 * D("0.0125")).quantize(D("1e-8")), D("34.772") + loss)
        account = venue.exchange.account()
        assert account.wallet_balance == wallet_before + loss - fill.commission
        assert account.cross_wallet_balance == account.wallet_balance

    def test_liquidation_emits_account_update(self, make_venue, ltc):
        venue = long_ltc_isolated(make_venue, ltc)
        venue.candle(ltc[CRASH_LTC])
        update = venue.events[-1]
        assert update["e"] == "ACCOUNT_UPDATE" and update["a"]["m"] == "ORDER"
        assert update["a"]["P"][0]["pa"] == "0" and update["a"]["P"][0]["iw"] == "0"
        assert update["a"]["P"][0]["ep"] == "0"

    def test_mark_price_feed_drives_liquidation(self, make_venue, ltc):
        venue = long_ltc_isolated(make_venue, ltc)
        venue.mark(LTC, D("85.00"))
        assert venue.exchange.positions()[0].mark_price == D("85.00")
        venue.mark(LTC, D("83.80"))  # below 83.872...: liquidated at the last traded price, in its candle
        [liquidation] = liquidations(venue)
        assert D(liquidation["L"]) == ltc[CRASH_LTC - 1].close
        assert venue.exchange.positions() == []

    def test_with_a_feed_the_candle_path_does_not_liquidate(self, make_venue, ltc):
        venue = long_ltc_isolated(make_venue, ltc)
        venue.mark(LTC, D("86.90"))
        venue.candle(ltc[CRASH_LTC])
        assert liquidations(venue) == [] and venue.exchange.positions()[0].amount == D("10")


    def test_the_tier_is_the_one_at_the_liquidation_price(self, make_venue, ltc):
        # 58 LTC at 86.93 is 5,041.94 USDT: LTCUSDT's second tier (0.6 %) at the mark, but the first (0.5 %,
        # up to 5,000) at the price it is liquidated at. The level solves margin = maintenance with the tier that
        # holds there, so the two sides of the equation meet exactly.
        venue = long_ltc_isolated(make_venue, ltc, leverage=40, quantity="58.000")
        [position] = venue.exchange.positions()
        [risk] = venue.exchange.position_risk(LTC)
        brackets = load_leverage_brackets()[LTC]
        price = risk.liquidation_price
        assert bracket_for(brackets, 58 * position.mark_price).bracket == 2
        assert bracket_for(brackets, 58 * price).bracket == 1
        margin_at_price = position.isolated_wallet + 58 * (price - position.entry_price)
        assert abs(margin_at_price - maintenance_margin(brackets, 58 * price)) < D("1e-18")
        venue.candle(ltc[CRASH_LTC])
        [liquidation] = liquidations(venue)
        assert D(liquidation["L"]) == price.quantize(D("0.01"), rounding=ROUND_FLOOR)

    def test_a_gap_past_the_bankruptcy_price_costs_no_more_than_the_isolated_margin(self, make_venue, ltc):
        venue = long_ltc_isolated(make_venue, ltc)  # 10 LTC at 86.93, 34.772 USDT isolated margin
        before = venue.exchange.account()
        last = ltc[CRASH_LTC - 1]
        # A made-up minute that opens 8 % lower: far past the liquidation (83.87) and bankruptcy (83.45) prices.
        gap = Candle(LTC, last.open_time + 60_000, last.close_time + 60_000, D("80.00"), D("80.50"), D("79.00"),
                     D("80.20"), D("5000"))
        venue.candle(gap)
        [liquidation] = liquidations(venue)
        # The insurance fund takes the position over at its bankruptcy price, 86.93 - 34.772 / 10 = 83.4528, on
        # the tick in the account's favour: the account loses its isolated margin and nothing more.
        assert D(liquidation["L"]) == D("83.46") > gap.high
        fill = venue.exchange.user_trades(LTC)[-1]
        assert fill.realized_pnl == D("-34.70000000") and fill.commission == D("0.07200000")  # what was left
        after = venue.exchange.account()
        assert after.wallet_balance == before.wallet_balance - D("34.772") >= 0
        assert after.cross_wallet_balance == before.cross_wallet_balance  # the cross wallet never paid for it
        assert after.insurance_cleared == 0


class TestCross:
    def test_cross_liquidation_closes_every_cross_position(self, make_venue, week_candles):
        btc, eth = week_candles["BTCUSDT"], week_candles["ETHUSDT"]
        venue = make_venue(config=SimConfig(leverage_brackets=BRACKETS), balance=D("40"))
        for index in range(CRASH_BTC):
            venue.candle(btc[index])
            venue.candle(eth[index])
        ex = venue.exchange
        ex.set_leverage("BTCUSDT", 100)
        ex.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.100"))
        ex.new_order(symbol="ETHUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.010"))
        btc_risk = ex.position_risk("BTCUSDT")[0]
        assert btc[CRASH_BTC].low < btc_risk.liquidation_price < btc[CRASH_BTC].open
        venue.candle(btc[CRASH_BTC])
        closed = liquidations(venue)
        assert [(u["s"], u["c"]) for u in closed] == [("BTCUSDT", "autoclose-1"), ("ETHUSDT", "autoclose-2")]
        assert D(closed[0]["L"]) == btc_risk.liquidation_price.quantize(D("0.1"), rounding=ROUND_FLOOR)
        assert D(closed[1]["L"]) == eth[CRASH_BTC - 1].close  # the other symbol closes at its last price
        assert ex.positions() == []
        account = ex.account()
        assert account.wallet_balance == (account.deposits + account.realized_pnl - account.fees_paid
                                          + account.funding_total)
        assert account.wallet_balance >= 0

    def test_the_insurance_fund_clears_a_cross_wallet_the_gap_left_below_zero(self, make_venue, btc):
        venue = make_venue(balance=D("40"))
        venue.candles(btc[:CRASH_BTC])
        ex = venue.exchange
        ex.set_leverage("BTCUSDT", 100)
        ex.new_order(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.100"))
        last = btc[CRASH_BTC - 1]
        gap = Candle("BTCUSDT", last.open_time + 60_000, last.close_time + 60_000, D("27000.00"), D("27100.00"),
                     D("26900.00"), D("27050.00"), D("800"))  # made up: opens 5 % lower
        venue.candle(gap)
        account = ex.account()
        assert ex.positions() == [] and account.wallet_balance == 0
        [clear] = [e for e in venue.of_type("ACCOUNT_UPDATE") if e["a"]["m"] == "INSURANCE_CLEAR"]
        assert D(clear["a"]["B"][0]["bc"]) == account.insurance_cleared > 0
        assert D(clear["a"]["B"][0]["wb"]) == 0
        assert account.wallet_balance == (account.deposits + account.realized_pnl - account.fees_paid
                                          + account.funding_total + account.insurance_cleared)

    def test_clearance_fee_rate_comes_from_exchange_info(self, ltc):
        clock = SimulatedClock(0)
        exchange = SimExchange.from_exchange_info(load_exchange_info(), clock=clock)
        assert exchange.liquidation_fee_rate("BTCUSDT") == D("0.012")
        assert exchange.liquidation_fee_rate("LTCUSDT") == D("0.015")
        custom = SimExchange.from_exchange_info(clock=clock, config=SimConfig(liquidation_fee_rate={LTC: D("0.02")}))
        assert custom.liquidation_fee_rate(LTC) == D("0.02")
