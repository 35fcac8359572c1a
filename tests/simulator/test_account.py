"""The USDT account: leverage, margin type, position mode, positions and PnL, isolated margin, deposits, funding."""

from __future__ import annotations

import csv
import json
from decimal import Decimal as D

import pytest

from simulator import rest_shapes
from simulator.account import PositionState, maintenance_margin, parse_leverage_brackets, to_wallet
from simulator.engine import SimConfig
from simulator.exchange_info import LEVERAGE_BRACKETS_PATH, load_leverage_brackets
from tests.simulator.conftest import read_candles
from utils.domain import MarginType, OrderType, PositionSide, Side, TimeInForce
from utils.errors import BinanceError

pytestmark = pytest.mark.shared_data

BTC = "BTCUSDT"
HOUR = 3_600_000


def code_of(call, *args, **kwargs) -> int:
    with pytest.raises(BinanceError) as caught:
        call(*args, **kwargs)
    return caught.value.code


def market(venue, side, quantity, symbol=BTC, **kwargs):
    return venue.exchange.new_order(symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=D(quantity),
                                    **kwargs)


def limit(venue, side, price, quantity="0.010", symbol=BTC, **kwargs):
    return venue.exchange.new_order(symbol=symbol, side=side, order_type=OrderType.LIMIT, quantity=D(quantity),
                                    price=D(price), time_in_force=TimeInForce.GTC, **kwargs)


@pytest.fixture
def venue(make_venue, btc):
    venue = make_venue()
    venue.candle(btc[0])
    return venue


class TestLeverage:
    def test_response_and_event(self, venue):
        response = venue.exchange.set_leverage(BTC, 10)  # BTCUSDT's shipped brackets: 10x up to 230,000,000
        assert response == {"leverage": 10, "maxNotionalValue": "230000000", "symbol": BTC}
        assert venue.events[-1]["e"] == "ACCOUNT_CONFIG_UPDATE" and venue.events[-1]["ac"] == {"s": BTC, "l": 10}
        assert venue.exchange.leverage(BTC) == 10

    @pytest.mark.parametrize("leverage", [0, -1, 126, True])
    def test_invalid(self, venue, leverage):
        with pytest.raises(BinanceError) as caught:
            venue.exchange.set_leverage(BTC, leverage)
        assert caught.value.code == -4028 and caught.value.msg == f"Leverage {leverage} is not valid"

    def test_max_leverage_comes_from_the_brackets(self, make_venue, btc):
        brackets = parse_leverage_brackets([{"symbol": BTC, "brackets": [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
             "maintMarginRatio": 0.004, "cum": 0},
            {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 50000,
             "maintMarginRatio": 0.005, "cum": 50}]}])
        venue = make_venue(config=SimConfig(leverage_brackets=brackets))
        assert venue.exchange.set_leverage(BTC, 125)["maxNotionalValue"] == "50000"
        assert venue.exchange.set_leverage(BTC, 100)["maxNotionalValue"] == "250000"
        assert code_of(venue.exchange.set_leverage, BTC, 126) == -4028
        venue.candle(btc[0])
        market(venue, Side.BUY, "2.000")  # 57,596 notional: above the 125x cap
        assert code_of(venue.exchange.set_leverage, BTC, 125) == -2027

    def test_shipped_brackets_are_binances_per_symbol(self, make_venue, btc):
        document = json.loads(LEVERAGE_BRACKETS_PATH.read_text())
        assert [entry["symbol"] for entry in document] == ["BTCUSDT", "ETHUSDT", "LTCUSDT"]
        for entry in document:  # the GET /fapi/v1/leverageBracket shape, tiers back to back from 0
            tiers = entry["brackets"]
            assert all(tier.keys() == {"bracket", "initialLeverage", "notionalCap", "notionalFloor",
                                       "maintMarginRatio", "cum"} for tier in tiers)
            assert tiers[0]["notionalFloor"] == 0
            assert all(low["notionalCap"] == high["notionalFloor"] for low, high in zip(tiers, tiers[1:], strict=False))
        brackets = load_leverage_brackets()
        for symbol, tiers in brackets.items():  # cum makes the maintenance margin continuous at every boundary
            for lower, upper in zip(tiers, tiers[1:], strict=False):
                edge = lower.notional_cap
                assert maintenance_margin([lower], edge) == edge * upper.maint_margin_ratio - upper.cum, symbol
        venue = make_venue()
        ex = venue.exchange
        # GET /fapi/v1/leverageBracket as the engine would answer it: the shipped document again
        assert [rest_shapes.leverage_brackets(s, ex.leverage_brackets(s)) for s in ex.symbols] == document
        assert ex.set_leverage(BTC, 125)["maxNotionalValue"] == "50000"
        assert ex.set_leverage("ETHUSDT", 125)["maxNotionalValue"] == "50000"
        assert ex.set_leverage("LTCUSDT", 75)["maxNotionalValue"] == "5000"
        assert code_of(ex.set_leverage, "LTCUSDT", 76) == -4028
        venue.candle(btc[0])
        assert code_of(market, venue, Side.BUY, "1.800") == -2027  # 51,832 USDT: past 125x's 50,000
        market(venue, Side.BUY, "1.700")  # 48,952: the first tier, 0.40 % maintenance
        assert ex.account().total_maintenance_margin == D("1.700") * D("28795.30") * D("0.004")
        ex.set_leverage(BTC, 100)  # a second market order takes it into the 100x tier: 0.5 % - 50
        market(venue, Side.BUY, "0.300")
        assert ex.account().total_maintenance_margin == D("2.000") * D("28795.30") * D("0.005") - 50

    def test_lowering_leverage_needs_margin(self, make_venue, btc):
        venue = make_venue(balance=D("100"))
        venue.candle(btc[0])
        market(venue, Side.BUY, "0.060")  # 1,728 notional: 86 USDT at 20x
        assert code_of(venue.exchange.set_leverage, BTC, 10) == -2028
        assert venue.exchange.leverage(BTC) == 20

    def test_isolated_leverage_cannot_be_lowered_with_a_position(self, venue):
        venue.exchange.set_margin_type(BTC, MarginType.ISOLATED)
        market(venue, Side.BUY, "0.010")
        assert code_of(venue.exchange.set_leverage, BTC, 10) == -4161
        venue.exchange.set_leverage(BTC, 20)  # raising (here: same) is fine


class TestMarginTypeAndPositionMode:
    def test_margin_type(self, venue):
        ex = venue.exchange
        assert code_of(ex.set_margin_type, BTC, MarginType.CROSSED) == -4046
        order = limit(venue, Side.BUY, "28000.0")
        assert code_of(ex.set_margin_type, BTC, MarginType.ISOLATED) == -4047
        ex.cancel_order(BTC, order_id=order.order_id)
        ex.new_algo_order(symbol=BTC, side=Side.BUY, order_type=OrderType.STOP_MARKET, trigger_price=D("29000"),
                          quantity=D("0.010"))
        assert code_of(ex.set_margin_type, BTC, MarginType.ISOLATED) == -4047
        ex.cancel_all_algo_orders(BTC)
        market(venue, Side.BUY, "0.010")
        assert code_of(ex.set_margin_type, BTC, "ISOLATED") == -4048
        market(venue, Side.SELL, "0.010")
        ex.set_margin_type(BTC, "ISOLATED")
        assert ex.margin_type(BTC) is MarginType.ISOLATED
        assert ex.margin_type("ETHUSDT") is MarginType.CROSSED

    def test_position_mode(self, venue):
        ex = venue.exchange
        assert code_of(ex.set_position_mode, False) == -4059
        order = limit(venue, Side.BUY, "28000.0", symbol=BTC)
        assert code_of(ex.set_position_mode, True) == -4067
        ex.cancel_order(BTC, order_id=order.order_id)
        market(venue, Side.BUY, "0.010")
        assert code_of(ex.set_position_mode, True) == -4068
        market(venue, Side.SELL, "0.010", reduce_only=True)
        ex.set_position_mode(True)
        assert ex.dual_side_position
        assert [p.position_side for p in ex.positions(BTC)] == [PositionSide.LONG, PositionSide.SHORT]

    def test_hedge_mode_holds_long_and_short_at_once(self, venue):
        ex = venue.exchange
        ex.set_position_mode(True)
        market(venue, Side.BUY, "0.010", position_side=PositionSide.LONG)
        market(venue, Side.SELL, "0.004", position_side=PositionSide.SHORT)
        market(venue, Side.SELL, "0.003", position_side=PositionSide.LONG)  # closes part of the long
        amounts = {p.position_side: p.amount for p in ex.positions()}
        assert amounts == {PositionSide.LONG: D("0.007"), PositionSide.SHORT: D("-0.004")}
        fills = ex.user_trades(BTC)
        assert fills[2].realized_pnl == to_wallet((fills[2].price - fills[0].price) * D("0.003"))
        assert fills[2].realized_pnl < 0  # sold below where it bought: slippage and impact on both
        assert venue.of_type("ACCOUNT_UPDATE")[-1]["a"]["P"][0]["ps"] == "LONG"


class TestPositions:
    def test_weighted_entry_break_even_and_unrealized(self, make_venue, btc):
        venue = make_venue(config=SimConfig(slippage_bps=D("0"), impact_bps=D("0")))
        venue.candle(btc[0])
        market(venue, Side.BUY, "0.010")  # at 28795.30
        venue.candle(btc[1])
        market(venue, Side.BUY, "0.030")  # at 28764.30
        [position] = venue.exchange.positions()
        assert position.amount == D("0.040")
        assert position.entry_price == (D("0.010") * D("28795.30") + D("0.030") * D("28764.30")) / D("0.040")
        fees = D("0.14397650") + D("0.43146450")
        assert position.break_even_price == position.entry_price + fees / D("0.040")
        assert position.mark_price == D("28764.30")
        assert position.unrealized_pnl == D("0.040") * (D("28764.30") - position.entry_price)
        # 28772.05 + 0.57544100 / 0.040 = 28786.436025 exactly (prices with more digits: test_events)
        assert venue.events[-1]["a"]["P"][0]["bep"] == "28786.436025" == str(position.break_even_price)

    def test_realized_pnl_on_reduction_and_flip(self, make_venue, btc):
        venue = make_venue(config=SimConfig(slippage_bps=D("0"), impact_bps=D("0")))
        venue.candle(btc[0])
        market(venue, Side.SELL, "0.020")  # short at 28795.30
        venue.candle(btc[1])
        market(venue, Side.BUY, "0.005")  # cover a quarter at 28764.30
        venue.candle(btc[2])
        market(venue, Side.BUY, "0.025")  # cover 0.015 at 28797.90 and go long 0.010
        fills = venue.exchange.user_trades(BTC)
        assert [f.realized_pnl for f in fills] == [D(0), D("0.15500000"), D("-0.03900000")]
        [position] = venue.exchange.positions()
        assert (position.amount, position.entry_price) == (D("0.010"), D("28797.90"))
        assert position.realized_pnl == D("0.11600000")
        account = venue.exchange.account()
        assert account.realized_pnl == D("0.11600000")
        assert account.wallet_balance == D("10000") + account.realized_pnl - account.fees_paid

    def test_account_margin_figures(self, venue):
        entry = market(venue, Side.BUY, "0.100").avg_price  # mark 28795.30
        limit(venue, Side.SELL, "29000.0", quantity="0.300")  # closes 0.1, may open 0.2 short
        account = venue.exchange.account()
        notional = D("0.100") * D("28795.30")
        assert account.total_position_initial_margin == notional / 20
        assert account.total_open_order_initial_margin == (D("0.300") * D("29000.0") - notional) / 20
        assert account.total_maintenance_margin == notional * D("0.004")  # BTCUSDT tier 1: 0.40 % up to 50,000
        assert account.unrealized_pnl == D("0.100") * (D("28795.30") - entry)
        assert account.equity == account.wallet_balance + account.unrealized_pnl
        assert account.available_balance == (account.wallet_balance + account.unrealized_pnl
                                             - account.total_initial_margin)

    def test_isolated_margin(self, venue):
        ex = venue.exchange
        ex.set_margin_type(BTC, MarginType.ISOLATED)
        ex.set_leverage(BTC, 10)
        entry = market(venue, Side.BUY, "0.100").avg_price
        [position] = ex.positions()
        assert position.isolated_wallet == D("0.100") * entry / 10
        account = ex.account()
        assert account.cross_wallet_balance == account.wallet_balance - position.isolated_wallet
        entry = venue.of_type("ACCOUNT_UPDATE")[-1]["a"]
        assert entry["P"][0]["mt"] == "isolated" and D(entry["P"][0]["iw"]) == position.isolated_wallet
        assert D(entry["B"][0]["cw"]) == account.cross_wallet_balance
        market(venue, Side.SELL, "0.040")
        assert ex.positions()[0].isolated_wallet == position.isolated_wallet * D("0.6")
        market(venue, Side.SELL, "0.060")
        assert ex.positions(BTC)[0].isolated_wallet == 0
        assert ex.account().cross_wallet_balance == ex.account().wallet_balance

    def test_deposit(self, venue):
        venue.exchange.deposit(D("250.5"))
        account = venue.exchange.account()
        assert account.deposits == D("10250.5") and account.wallet_balance == D("10250.5")
        event = venue.events[-1]
        assert event["a"]["m"] == "DEPOSIT" and event["a"]["B"][0]["bc"] == "250.50000000" and event["a"]["P"] == []
        assert event["a"]["B"][0]["wb"] == "10250.50000000"  # Binance's 8 decimals, as in uds_account_update.json
        assert code_of(venue.exchange.deposit, D("0")) == -4055

    def test_position_state_arithmetic(self):
        position = PositionState(BTC, PositionSide.BOTH)
        assert position.apply_fill(D("2"), D("100"), D("0.1")) == (D(0), D(0))
        assert position.apply_fill(D("-3"), D("110"), D("0.2")) == (D("20.00000000"), D("2"))
        assert (position.amount, position.entry_price) == (D("-1"), D("110"))
        assert position.open_fees == D("0.2") / 3


class TestUserTrades:
    def test_filters(self, venue):
        for _ in range(3):
            market(venue, Side.BUY, "0.010")
        ex = venue.exchange
        ids = [f.trade_id for f in ex.user_trades(BTC)]
        assert ids == sorted(ids) and len(ids) == 3
        assert [f.trade_id for f in ex.user_trades(BTC, from_id=ids[1])] == ids[1:]
        assert [f.trade_id for f in ex.user_trades(BTC, limit=2)] == ids[1:]
        assert ex.user_trades(BTC, start_time=venue.clock.now_ms() + 1) == []
        assert code_of(ex.user_trades, BTC, from_id=1, start_time=0) == -1128
        assert code_of(ex.user_trades, BTC, limit=1001) == -1130
        assert code_of(ex.user_trades, BTC, start_time=0, end_time=8 * 86_400_000) == -1127


class TestFunding:
    def test_settles_every_eight_hours_at_the_mark(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])  # 2023-04-20 00:00; first funding time 08:00
        assert venue.exchange.next_funding_time(BTC) == btc[0].open_time + 8 * HOUR
        market(venue, Side.BUY, "0.100")
        venue.candles(btc[1:480])
        assert venue.of_type("ACCOUNT_UPDATE")[-1]["a"]["m"] == "ORDER"
        mark_at_funding = btc[479].close  # the 07:59 candle closes at 08:00
        venue.candle(btc[480])  # opens at 08:00: funding settles before it is matched
        funding = [e for e in venue.of_type("ACCOUNT_UPDATE") if e["a"]["m"] == "FUNDING_FEE"]
        expected = to_wallet(-D("0.100") * mark_at_funding * D("0.0001"))
        assert len(funding) == 1 and D(funding[0]["a"]["B"][0]["bc"]) == expected
        assert funding[0]["a"]["P"] == []  # cross positions are not listed on a funding event
        assert venue.exchange.account().funding_total == expected
        assert venue.exchange.next_funding_time(BTC) == btc[0].open_time + 16 * HOUR

    def test_interval_is_per_symbol(self, make_venue, btc):
        venue = make_venue(config=SimConfig(funding_interval_hours={BTC: 4}, default_funding_rate=D("-0.0002")))
        venue.candle(btc[0])
        market(venue, Side.BUY, "0.100")
        venue.candles(btc[1:481])
        funding = [e for e in venue.of_type("ACCOUNT_UPDATE") if e["a"]["m"] == "FUNDING_FEE"]
        assert len(funding) == 2  # 04:00 and 08:00
        assert all(D(e["a"]["B"][0]["bc"]) > 0 for e in funding)  # negative rate: longs receive

    def test_isolated_funding_lists_the_position_and_moves_its_margin(self, make_venue, btc):
        venue = make_venue()
        venue.exchange.set_margin_type(BTC, MarginType.ISOLATED)
        venue.candle(btc[0])
        market(venue, Side.SELL, "0.100")
        wallet_before = venue.exchange.positions()[0].isolated_wallet
        venue.candles(btc[1:481])
        [event] = [e for e in venue.of_type("ACCOUNT_UPDATE") if e["a"]["m"] == "FUNDING_FEE"]
        paid = D(event["a"]["B"][0]["bc"])
        assert paid > 0  # shorts receive a positive rate
        assert event["a"]["P"][0]["s"] == BTC and D(event["a"]["P"][0]["iw"]) == wallet_before + paid

    def test_mark_price_feed_sets_rate_time_and_mark(self, make_venue, btc):
        venue = make_venue()
        venue.candle(btc[0])
        market(venue, Side.BUY, "0.100")
        funding_time = btc[0].open_time + 2 * HOUR
        venue.mark(BTC, D("28000"), rate=D("0.0005"), next_funding_time=funding_time)
        assert venue.exchange.mark_price(BTC) == D("28000")
        venue.clock.set(funding_time)
        venue.exchange.settle_due_funding()
        [event] = [e for e in venue.of_type("ACCOUNT_UPDATE") if e["a"]["m"] == "FUNDING_FEE"]
        assert D(event["a"]["B"][0]["bc"]) == to_wallet(-D("0.100") * D("28000") * D("0.0005"))
        assert venue.exchange.next_funding_time(BTC) == funding_time + 8 * HOUR

    def test_real_funding_rates_over_two_days(self, make_venue, shared_dir):
        """January 2023 BTCUSDT candles with Binance's recorded funding rates (funding_mark/)."""
        candles = read_candles(shared_dir / "data/usdm_1m/BTCUSDT_usdm_1m_2023-01-01_2023-03-09.csv", BTC)[:2 * 1440]
        with open(shared_dir / "data/funding_mark/BTCUSDT_funding_rate_2023-01-01_2023-04-26.csv") as handle:
            rates = [(int(r["funding_time_ms"]), D(r["funding_rate"])) for r in csv.DictReader(handle)]
        venue = make_venue(balance=D("100000"))
        venue.candle(candles[0])
        market(venue, Side.SELL, "1.000")
        expected = D(0)
        schedule = iter(rate for rate in rates if candles[0].open_time < rate[0] <= candles[-1].open_time)
        nominal, rate = next(schedule)
        venue.exchange.set_funding_rate(BTC, rate)
        for index, candle in enumerate(candles[1:], start=1):
            if candle.open_time == nominal // HOUR * HOUR:  # Binance stamps funding a few ms after the hour
                expected += to_wallet(D("1.000") * candles[index - 1].close * rate)
            venue.candle(candle)
            if candle.open_time == nominal // HOUR * HOUR:
                nominal, rate = next(schedule, (0, D(0)))
                venue.exchange.set_funding_rate(BTC, rate)
        assert venue.exchange.account().funding_total == expected != 0
        assert len([e for e in venue.of_type("ACCOUNT_UPDATE") if e["a"]["m"] == "FUNDING_FEE"]) == 5
