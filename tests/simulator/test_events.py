"""Events and REST bodies have Binance's shapes; ids only grow; the same inputs give the same bytes."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from simulator import rest_shapes
from simulator.engine import SimConfig
from simulator.events import money_text, num, price_text
from utils.domain import MarginType, OrderType, Side, TimeInForce

pytestmark = pytest.mark.shared_data

BTC = "BTCUSDT"


def payload(payloads_dir: Path, name: str):
    return json.loads((payloads_dir / name).read_text())


def scenario(venue, candles) -> None:
    """A bit of everything: market, resting limits, partial fills, a stop, funding, a cancel, a liquidation."""
    ex = venue.exchange
    venue.candle(candles[0])
    ex.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.050"))
    ex.new_order(symbol=BTC, side=Side.SELL, order_type=OrderType.LIMIT, quantity=D("0.200"), price=D("28796.0"),
                 time_in_force=TimeInForce.GTC)
    ex.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.010"), price=D("28000.0"),
                 time_in_force=TimeInForce.GTC, client_order_id="far-bid")
    ex.new_algo_order(symbol=BTC, side=Side.BUY, order_type=OrderType.STOP_MARKET, trigger_price=D("28850.0"),
                      quantity=D("0.020"))
    for index, candle in enumerate(candles[1:600], start=1):
        venue.candle(candle)
        if index == 5:
            ex.cancel_order(BTC, client_order_id="far-bid")
        if index % 97 == 0:
            ex.new_order(symbol=BTC, side=Side.SELL if index % 2 else Side.BUY, order_type=OrderType.MARKET,
                         quantity=D("0.013"))
    ex.deposit(D("5"))


@pytest.fixture
def run(make_venue, btc):
    def go(seed: int = 0):
        venue = make_venue(config=SimConfig(max_volume_fraction=D("0.0001"), seed=seed))
        scenario(venue, btc)
        return venue

    return go


class TestShapes:
    def test_order_trade_update_fields(self, run, payloads_dir):
        reference = payload(payloads_dir, "uds_order_trade_update.json")
        venue = run()
        trailing_only = {"AP", "cr"}  # sent for TRAILING_STOP_MARKET orders only
        for event in venue.of_type("ORDER_TRADE_UPDATE"):
            assert event.keys() == reference.keys()
            assert event["o"].keys() == reference["o"].keys() - trailing_only
            for key, value in event["o"].items():
                assert type(value) is type(reference["o"][key]), key

    def test_account_update_fields(self, run, payloads_dir):
        reference = payload(payloads_dir, "uds_account_update.json")
        venue = run()
        reasons = set()
        for event in venue.of_type("ACCOUNT_UPDATE"):
            reasons.add(event["a"]["m"])
            assert event.keys() == reference.keys() and event["a"].keys() == reference["a"].keys()
            for balance in event["a"]["B"]:
                assert balance.keys() == reference["a"]["B"][0].keys()
            for position in event["a"]["P"]:
                assert position.keys() == reference["a"]["P"][0].keys()
        assert reasons == {"ORDER", "FUNDING_FEE", "DEPOSIT"}

    def test_account_config_update_fields(self, make_venue, payloads_dir):
        reference = payload(payloads_dir, "uds_account_config_update_leverage.json")
        venue = make_venue()
        venue.exchange.set_leverage(BTC, 5)
        event = venue.events[-1]
        assert event.keys() == reference.keys() and event["ac"].keys() == reference["ac"].keys()

    def test_algo_update_fields_as_binance_sends_them(self, make_venue, btc, payloads_dir):
        reference = payload(payloads_dir, "uds_algo_update.json")
        venue = make_venue()
        venue.candle(btc[0])
        venue.exchange.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.010"))
        venue.exchange.new_algo_order(symbol=BTC, side=Side.SELL, order_type=OrderType.STOP_MARKET,
                                      trigger_price=D("28770.0"), close_position=True)
        venue.exchange.new_algo_order(symbol=BTC, side=Side.SELL, order_type=OrderType.TAKE_PROFIT,
                                      trigger_price=D("29500.0"), price=D("29500.0"), quantity=D("0.010"))
        venue.exchange.cancel_algo_order(algo_id=2)
        venue.candle(btc[1])  # the stop triggers at 28770.0
        updates = [event["o"] for event in venue.of_type("ALGO_UPDATE")]
        for event in venue.of_type("ALGO_UPDATE"):
            assert event.keys() == reference.keys() and event["o"].keys() == reference["o"].keys()
            for key, value in event["o"].items():
                assert type(value) is type(reference["o"][key]), key
        # Not triggered yet (NEW, CANCELED, TRIGGERING): as in Binance's example, "ai" "", "act" "0", "ap" / "aq"
        # "0.00000", "rm" empty unless there is a reason.
        untriggered = [u for u in updates if u["X"] in ("NEW", "CANCELED", "TRIGGERING")]
        assert len(untriggered) == 4
        assert {(u["ai"], u["act"], u["ap"], u["aq"], u["rm"]) for u in untriggered} == {("", "0", "0.00000",
                                                                                         "0.00000", "")}
        finished = updates[-1]
        assert finished["X"] == "FINISHED" and finished["act"] == "MARKET" and finished["ai"] != ""
        assert finished["aq"] == "0.010"

    def test_derived_prices_and_amounts_are_sent_at_binances_precision(self, make_venue, btc, payloads_dir):
        venue = make_venue()
        venue.exchange.set_margin_type(BTC, MarginType.ISOLATED)
        venue.exchange.set_leverage(BTC, 3)  # the isolated margin is notional / 3: no finite decimal
        venue.candle(btc[0])
        for quantity in ("0.007", "0.011", "0.013"):  # an average entry with a repeating expansion
            venue.exchange.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D(quantity))
        [position] = venue.exchange.positions()
        assert len(str(position.entry_price)) > 20  # the engine keeps every digit
        entry = venue.of_type("ACCOUNT_UPDATE")[-1]["a"]["P"][0]
        assert entry["ep"] == price_text(position.entry_price)
        assert D(entry["ep"]) == position.entry_price.quantize(D("1e-8"))
        assert entry["bep"] == price_text(position.break_even_price)
        assert entry["iw"] == money_text(position.isolated_wallet) and len(entry["iw"].split(".")[1]) == 8
        assert entry["up"] == money_text(position.unrealized_pnl)
        [risk] = venue.exchange.position_risk_v3()
        reference = payload(payloads_dir, "rest_position_risk_v3_hedge.json")[1]  # COMPUSDT: a short with figures
        for key in ("markPrice", "unRealizedProfit", "liquidationPrice", "notional", "initialMargin",
                    "maintMargin", "positionInitialMargin"):
            decimals = len(risk[key].split(".")[1]) if "." in risk[key] else 0
            assert decimals <= 8, (key, risk[key])
            if key != "markPrice":  # Binance pads these to 8 decimals ("2260.56757210")
                assert decimals == len(reference[key].split(".")[1]) == 8, key
        assert len(risk["entryPrice"].split(".")[1]) <= 8 and len(risk["breakEvenPrice"].split(".")[1]) <= 8
        order = rest_shapes.order_to_rest(venue.exchange.query_order(BTC, order_id=3))
        assert order["avgPrice"] == price_text(venue.exchange.query_order(BTC, order_id=3).avg_price)
        assert price_text(D("28772.05000")) == "28772.05" and price_text(D("1") / 3) == "0.33333333"
        assert money_text(D("0.764277")) == "0.76427700" and money_text(D(0)) == "0"

    def test_numbers_are_plain_decimal_strings(self, run):
        def walk(value):
            if isinstance(value, dict):
                for key, item in value.items():
                    if key not in ("c", "caid"):  # client ids are free text
                        yield from walk(item)
            elif isinstance(value, list):
                for item in value:
                    yield from walk(item)
            elif isinstance(value, str) and value and (value[0].isdigit() or value[0] == "-"):
                yield value

        for event in run().events:
            for text in walk(event):
                assert "E" not in text and "e" not in text, text
                D(text)

    def test_num(self):
        assert [num(D(x)) for x in ("0E-8", "-0", "1E-5", "1.50", "100", "-0.000")] == [
            "0", "0", "0.00001", "1.50", "100", "0"]


class TestRestShapes:
    def test_orders(self, run, payloads_dir):
        venue = run()
        ex = venue.exchange
        order = ex.query_order(BTC, order_id=1)
        query = rest_shapes.order_to_rest(order)
        reference = payload(payloads_dir, "rest_open_orders.json")[0]
        assert query.keys() == reference.keys() - {"activatePrice", "priceRate"}
        created = rest_shapes.order_to_rest(order, new_order_response=True)
        assert created.keys() == payload(payloads_dir, "rest_new_order_response.json").keys()
        assert created["status"] == "FILLED" and created["executedQty"] == created["cumQty"] == "0.050"

    def test_cancel_order_response(self, make_venue, btc, payloads_dir):
        venue = make_venue()
        venue.candle(btc[0])
        order = venue.exchange.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.LIMIT,
                                         quantity=D("0.010"), price=D("28000.0"), time_in_force=TimeInForce.GTC)
        cancelled = venue.exchange.cancel_order(BTC, order_id=order.order_id)
        body = rest_shapes.cancel_order_to_rest(cancelled)
        reference = payload(payloads_dir, "rest_cancel_order.json")
        # DELETE /order answers with cumQty and without time (activatePrice / priceRate: trailing stops only).
        assert body.keys() == reference.keys() - {"activatePrice", "priceRate"}
        assert "time" not in body and body["cumQty"] == "0" and body["status"] == "CANCELED"
        for key, value in body.items():
            assert type(value) is type(reference[key]), key

    def test_algo_order(self, run, payloads_dir):
        venue = run()
        body = rest_shapes.algo_order_to_rest(venue.exchange.query_algo_order(algo_id=1))
        reference = payload(payloads_dir, "rest_new_algo_order_response.json")
        assert body.keys() >= reference.keys()
        assert body["algoStatus"] == "FINISHED" and "actualOrderId" in body

    def test_user_trades(self, run, payloads_dir):
        venue = run()
        reference = payload(payloads_dir, "rest_user_trades.json")[0]
        for fill in venue.exchange.user_trades(BTC):
            body = rest_shapes.fill_to_rest(fill)
            assert body.keys() == reference.keys()
            assert body["buyer"] == (body["side"] == "BUY")

    def test_position_risk_and_account(self, make_venue, btc, payloads_dir):
        venue = make_venue()
        venue.exchange.set_margin_type("ETHUSDT", MarginType.ISOLATED)
        venue.candle(btc[0])
        venue.exchange.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.010"))
        [risk] = venue.exchange.position_risk_v3()
        assert risk.keys() == payload(payloads_dir, "rest_position_risk_v3_oneway.json")[0].keys()
        assert D(risk["notional"]) == D("0.010") * btc[0].close
        account = venue.exchange.account_v3()
        reference = payload(payloads_dir, "rest_account_v3_single_asset.json")
        assert account.keys() == reference.keys()
        assert account["assets"][0].keys() == reference["assets"][0].keys()
        assert account["positions"][0].keys() == reference["positions"][0].keys()
        assert D(account["totalWalletBalance"]) == venue.exchange.account().wallet_balance
        assert rest_shapes.cancel_all_response() == payload(payloads_dir, "rest_cancel_all_open_orders.json")
        assert rest_shapes.margin_type_response() == payload(payloads_dir, "rest_margin_type.json")


class TestIdsAndDeterminism:
    def test_ids_only_grow(self, run):
        venue = run()
        updates = venue.order_updates()
        new_ids = [u["i"] for u in updates if u["x"] == "NEW"]
        trade_ids = [u["t"] for u in updates if u["t"]]
        assert new_ids == sorted(set(new_ids)) and trade_ids == sorted(set(trade_ids))
        assert trade_ids == [f.trade_id for f in venue.exchange.user_trades(BTC, limit=1000)]
        times = [event["E"] for event in venue.events]
        assert times == sorted(times)
        algo_ids = [e["o"]["aid"] for e in venue.of_type("ALGO_UPDATE")]
        assert algo_ids == sorted(algo_ids)

    def test_same_inputs_same_bytes(self, run):
        first = json.dumps(run().events)
        second = json.dumps(run().events)
        assert first == second and len(first) > 10_000

    def test_the_seed_changes_generated_ids_only(self, run):
        first, other = run(seed=1).events, run(seed=2).events
        assert json.dumps(first) != json.dumps(other)
        strip = [{**e, "o": {**e["o"], "c": ""}} if e["e"] == "ORDER_TRADE_UPDATE" else
                 {**e, "o": {**e["o"], "caid": ""}} if e["e"] == "ALGO_UPDATE" else e for e in first]
        strip_other = [{**e, "o": {**e["o"], "c": ""}} if e["e"] == "ORDER_TRADE_UPDATE" else
                       {**e, "o": {**e["o"], "caid": ""}} if e["e"] == "ALGO_UPDATE" else e for e in other]
        assert strip == strip_other

    def test_no_listener_no_events(self, make_venue, btc):
        venue = make_venue()
        venue.exchange._listeners.clear()
        venue.candle(btc[0])
        venue.exchange.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.010"))
        assert venue.events == [] and not venue.exchange._pending

    def test_listener_sees_complete_state(self, make_venue, btc):
        venue = make_venue()
        seen = []
        venue.exchange.add_listener(lambda event: seen.append(len(venue.exchange.user_trades(BTC))))
        venue.candle(btc[0])
        venue.exchange.new_order(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.010"))
        assert seen == [1, 1, 1]  # NEW, TRADE, ACCOUNT_UPDATE all delivered after the fill was recorded
