"""Every REST endpoint answers with the fields and JSON types of Binance's documented payloads
(../shared/binance/payloads), and does what it says on the exchange behind it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.sim_server import START_MS, BinanceTestClient, default_candles

MINUTE = 60_000
TRAILING_ONLY = {"activatePrice", "priceRate"}  # Binance sends these for trailing stops only


def _fixture(payloads_dir: Path, name: str) -> Any:
    return json.loads((payloads_dir / f"{name}.json").read_text())


def assert_shaped_like(ours: Any, theirs: Any, *, optional: set[str] = frozenset(), extra: set[str] = frozenset()):
    """Same field names (bar ``optional`` ones of theirs and ``extra`` ones of ours), same JSON types."""
    if isinstance(theirs, list):
        assert isinstance(ours, list) and ours, "expected a non-empty list"
        theirs, ours = theirs[0], ours[0]
    assert isinstance(ours, dict)
    assert set(theirs) - optional <= set(ours), set(theirs) - optional - set(ours)
    assert set(ours) <= set(theirs) | extra, set(ours) - set(theirs) - extra
    for key in set(ours) & set(theirs):
        if theirs[key] is not None:
            assert type(ours[key]) is type(theirs[key]), (key, ours[key], theirs[key])


@pytest.fixture
async def trading(sim_server):
    """A client with a filled market order, a resting limit order and a conditional order on BTCUSDT."""
    async with BinanceTestClient(sim_server.rest_url) as client:
        await client.signed("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                       "quantity": "0.020"})
        resting = await client.signed("POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
            "price": "20000", "newClientOrderId": "rest-limit"})
        algo = await client.signed("POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
            "triggerPrice": "21000", "closePosition": "true", "workingType": "MARK_PRICE",
            "clientAlgoId": "rest-stop"})
        assert resting.status == algo.status == 200, (resting.body, algo.body)
        yield client, resting.body, algo.body


async def test_orders(trading, payloads_dir: Path):
    client, resting, _ = trading
    assert_shaped_like(resting, _fixture(payloads_dir, "rest_new_order_response"), optional={"avgPrice",
                                                                                             "cumQuote"},
                       extra={"avgPrice", "cumQuote"})
    assert resting["status"] == "NEW" and resting["executedQty"] == "0"  # the default answer is ACK
    query = await client.signed("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]})
    assert_shaped_like(query.body, _fixture(payloads_dir, "rest_query_order"), optional=TRAILING_ONLY,
                       extra={"priceMatch", "selfTradePreventionMode", "goodTillDate"})
    open_one = await client.signed("GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT",
                                                                  "origClientOrderId": "rest-limit"})
    assert open_one.body == query.body
    listed = await client.signed("GET", "/fapi/v1/openOrders")
    assert_shaped_like(listed.body, _fixture(payloads_dir, "rest_open_orders"), optional=TRAILING_ONLY)
    history = await client.signed("GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT"})
    assert [o["status"] for o in history.body] == ["FILLED", "NEW"]
    from_id = await client.signed("GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT",
                                                                "orderId": resting["orderId"]})
    assert [o["orderId"] for o in from_id.body] == [resting["orderId"]]
    cancel = await client.signed("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId":
                                                              "rest-limit"})
    assert_shaped_like(cancel.body, _fixture(payloads_dir, "rest_cancel_order"), optional=TRAILING_ONLY)
    assert cancel.body["status"] == "CANCELED"
    gone = await client.signed("GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "orderId": resting["orderId"]})
    again = await client.signed("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]})
    assert gone.code == -2013 and again.code == -2011
    await client.signed("POST", "/fapi/v1/order", {"symbol": "ETHUSDT", "side": "SELL", "type": "LIMIT",
                                                   "timeInForce": "GTC", "quantity": "0.1", "price": "9000"})
    everything = await client.signed("DELETE", "/fapi/v1/allOpenOrders", {"symbol": "ETHUSDT"})
    assert everything.body == _fixture(payloads_dir, "rest_cancel_all_open_orders")
    assert (await client.signed("GET", "/fapi/v1/openOrders", {"symbol": "ETHUSDT"})).body == []


async def test_algo_orders(trading, payloads_dir: Path):
    client, _, algo = trading
    assert_shaped_like(algo, _fixture(payloads_dir, "rest_new_algo_order_response"))
    found = await client.signed("GET", "/fapi/v1/algoOrder", {"clientAlgoId": "rest-stop"})
    listed = await client.signed("GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"})
    by_id = await client.signed("GET", "/fapi/v1/openAlgoOrders", {"algoId": algo["algoId"] + 1})
    assert found.body["algoId"] == algo["algoId"] and [a["algoId"] for a in listed.body] == [algo["algoId"]]
    assert by_id.body == []
    cancelled = await client.signed("DELETE", "/fapi/v1/algoOrder", {"algoId": algo["algoId"]})
    assert cancelled.body == {"algoId": algo["algoId"], "clientAlgoId": "rest-stop", "code": "200",
                              "msg": "success"}
    await client.signed("POST", "/fapi/v1/algoOrder", {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
        "triggerPrice": "21000", "quantity": "0.010", "reduceOnly": "true"})
    all_gone = await client.signed("DELETE", "/fapi/v1/algoOpenOrders", {"symbol": "BTCUSDT"})
    assert all_gone.body["code"] == 200
    assert (await client.signed("GET", "/fapi/v1/openAlgoOrders")).body == []
    missing_trigger = await client.signed("POST", "/fapi/v1/algoOrder", {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.01"})
    assert missing_trigger.code == -1102


async def test_account_positions_trades(trading, payloads_dir: Path, sim_server):
    client, _, _ = trading
    account = await client.signed("GET", "/fapi/v3/account")
    theirs = _fixture(payloads_dir, "rest_account_v3_single_asset")
    assert_shaped_like(account.body, theirs)
    assert_shaped_like(account.body["assets"], theirs["assets"])
    assert_shaped_like(account.body["positions"], theirs["positions"])
    positions = await client.signed("GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"})
    assert_shaped_like(positions.body, _fixture(payloads_dir, "rest_position_risk_v3_oneway"))
    assert positions.body[0]["positionAmt"] == "0.020"
    trades = await client.signed("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert_shaped_like(trades.body, _fixture(payloads_dir, "rest_user_trades"))
    by_order = await client.signed("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "orderId": 1})
    none = await client.signed("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "orderId": 2})
    combo = await client.signed("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "orderId": 1, "fromId": 1})
    assert len(by_order.body) == 1 and none.body == [] and combo.code == -1128
    balance = await client.signed("GET", "/fapi/v2/balance")
    state = sim_server.exchange().account()
    assert balance.body[0]["balance"] == format(state.wallet_balance, "f")
    assert set(balance.body[0]) == {"accountAlias", "asset", "balance", "crossWalletBalance", "crossUnPnl",
                                    "availableBalance", "maxWithdrawAmount", "marginAvailable", "updateTime"}


async def test_account_settings(sim_server, payloads_dir: Path):
    async with BinanceTestClient(sim_server.rest_url) as client:
        leverage = await client.signed("POST", "/fapi/v1/leverage", {"symbol": "ETHUSDT", "leverage": 3})
        assert_shaped_like(leverage.body, _fixture(payloads_dir, "rest_leverage"))
        too_high = await client.signed("POST", "/fapi/v1/leverage", {"symbol": "ETHUSDT", "leverage": 500})
        margin = await client.signed("POST", "/fapi/v1/marginType", {"symbol": "ETHUSDT", "marginType": "ISOLATED"})
        unchanged = await client.signed("POST", "/fapi/v1/marginType", {"symbol": "ETHUSDT",
                                                                        "marginType": "ISOLATED"})
        mode = await client.signed("GET", "/fapi/v1/positionSide/dual")
        hedge = await client.signed("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
        mode_after = await client.signed("GET", "/fapi/v1/positionSide/dual")
        one_bracket = await client.signed("GET", "/fapi/v1/leverageBracket", {"symbol": "BTCUSDT"})
        brackets = await client.signed("GET", "/fapi/v1/leverageBracket")
    assert leverage.body["leverage"] == 3 and too_high.code == -4028
    assert margin.body == _fixture(payloads_dir, "rest_margin_type") and unchanged.code == -4046
    assert mode.body == {"dualSidePosition": False} and mode_after.body == {"dualSidePosition": True}
    assert hedge.body == _fixture(payloads_dir, "rest_position_side_dual")
    tier = one_bracket.body["brackets"][0]
    assert one_bracket.body["symbol"] == "BTCUSDT" and set(tier) == {
        "bracket", "initialLeverage", "notionalCap", "notionalFloor", "maintMarginRatio", "cum"}
    assert isinstance(tier["notionalCap"], int) and isinstance(tier["maintMarginRatio"], (int, float))
    assert [b["symbol"] for b in brackets.body] == list(sim_server.symbols)


async def test_listen_key_endpoints(sim_server, payloads_dir: Path):
    async with BinanceTestClient(sim_server.rest_url) as client:
        start = await client.raw("POST", "/fapi/v1/listenKey")
        keep = await client.raw("PUT", "/fapi/v1/listenKey")
        close = await client.raw("DELETE", "/fapi/v1/listenKey")
    assert_shaped_like(start.body, _fixture(payloads_dir, "rest_listen_key_post"))
    assert_shaped_like(keep.body, _fixture(payloads_dir, "rest_listen_key_put"))
    assert close.body == _fixture(payloads_dir, "rest_listen_key_delete")


async def test_market_data(sim_server_factory, payloads_dir: Path):
    server = await sim_server_factory(candles=default_candles(minutes=600))
    await server.advance(8 * 60 * MINUTE + 30_000)  # 08:01:30 on the market clock, past a funding time
    now = server.market_clock.now_ms()
    async with BinanceTestClient(server.rest_url) as client:
        info = await client.public("GET", "/fapi/v1/exchangeInfo")
        klines = await client.public("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 3})
        window = await client.public("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "5m",
                                                                "startTime": START_MS, "limit": 2})
        ended = await client.public("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h",
                                                               "endTime": START_MS + 3 * 3_600_000})
        future = await client.public("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m",
                                                                "startTime": now + MINUTE})
        bad_interval = await client.public("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "7m"})
        bad_limit = await client.public("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m",
                                                                   "limit": 1501})
        backwards = await client.public("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m",
                                                                   "startTime": 2, "endTime": 1})
        mark = await client.public("GET", "/fapi/v1/premiumIndex", {"symbol": "ETHUSDT"})
        marks = await client.public("GET", "/fapi/v1/premiumIndex")
        funding = await client.public("GET", "/fapi/v1/fundingRate", {"symbol": "BTCUSDT"})
        funding_info = await client.public("GET", "/fapi/v1/fundingInfo")
    assert set(_fixture(payloads_dir, "rest_exchange_info")) <= set(info.body)
    assert info.body["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                          "limit": 2400}
    assert [type(v) for v in klines.body[0]] == [type(v) for v in _fixture(payloads_dir, "rest_klines")[0]]
    assert klines.body[-1][0] == now // MINUTE * MINUTE  # the forming candle is the last one, half revealed
    forming_source = default_candles(minutes=600)["BTCUSDT"][(now - START_MS) // MINUTE]
    assert Decimal(klines.body[-1][5]) == (forming_source.volume / 2).quantize(forming_source.volume)
    candles = default_candles(minutes=600)["BTCUSDT"]
    first_five = candles[:5]
    assert window.body[0][:7] == [START_MS, format(first_five[0].open, "f"),
                                  format(max(c.high for c in first_five), "f"),
                                  format(min(c.low for c in first_five), "f"), format(first_five[-1].close, "f"),
                                  format(sum((c.volume for c in first_five), Decimal(0)), "f"), START_MS + 5 * MINUTE - 1]
    assert [row[0] for row in ended.body] == [START_MS + h * 3_600_000 for h in range(4)]
    assert future.body == []
    assert bad_interval.code == -1120 and bad_limit.code == -1130 and backwards.code == -1023
    assert_shaped_like(mark.body, _fixture(payloads_dir, "rest_premium_index_symbol"))
    assert Decimal(mark.body["markPrice"]) == server.exchange().mark_price("ETHUSDT")
    assert [m["symbol"] for m in marks.body] == ["BTCUSDT", "ETHUSDT"]
    assert_shaped_like(funding.body, _fixture(payloads_dir, "rest_funding_rate_history"))
    assert [f["fundingTime"] for f in funding.body] == [START_MS + 8 * 3_600_000]
    assert_shaped_like(funding_info.body, _fixture(payloads_dir, "rest_funding_info"))
    assert {f["fundingIntervalHours"] for f in funding_info.body} == {8}
