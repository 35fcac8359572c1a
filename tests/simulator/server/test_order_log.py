"""The server's record of every new-order request: what the chaos tests use to prove no client order id went twice."""

from __future__ import annotations

import pytest

from simulator.server.admin import TOKEN_HEADER
from simulator.server.order_log import read_order_log
from tests.sim_server import BinanceTestClient

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}


async def test_every_order_request_is_recorded_whatever_became_of_it(sim_server_factory, tmp_path):
    log_file = tmp_path / "orders.jsonl"
    server = await sim_server_factory(order_log=log_file, admin_token="t0ken")
    async with BinanceTestClient(server.rest_url) as client:
        assert (await client.signed("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "a-1"})).status == 200
        server.faults.time_out(executed=False, path="/fapi/v1/order")
        with pytest.raises(TimeoutError):
            await client.signed("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "a-2"}, timeout=0.3)
        server.faults.throttle(count=1)
        throttled = await client.signed("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "a-3"})
        assert throttled.code == -1008
        bad_signature = await client.signed("POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "a-4"},
                                            secret="wrong")
        assert bad_signature.code == -1022  # never reached the exchange: not recorded
        algo = await client.signed("POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
            "triggerPrice": "1000", "quantity": "0.010", "reduceOnly": "true", "clientAlgoId": "a-5"})
        assert algo.status == 200, algo.body
        await client.signed("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "a-1"})
        listed = await client.raw("GET", "/admin/orders-received", headers={TOKEN_HEADER: "t0ken"})
    expected = ["a-1", "a-2", "a-3", "a-5"]
    assert [entry["clientOrderId"] for entry in listed.body] == expected
    assert {entry["account"] for entry in listed.body} == {"account1"}
    assert [e.client_order_id for e in server.orders_received.entries] == expected
    from_file = read_order_log(log_file)
    assert [(e.client_order_id, e.path, e.symbol) for e in from_file] == [
        ("a-1", "/fapi/v1/order", "BTCUSDT"), ("a-2", "/fapi/v1/order", "BTCUSDT"),
        ("a-3", "/fapi/v1/order", "BTCUSDT"), ("a-5", "/fapi/v1/algoOrder", "BTCUSDT")]


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text('{"time":1,"account":"account1","path":"/fapi/v1/order","symbol":"BTCUSDT",'
                    '"client_order_id":"x"}\n{"time":2,"acc', encoding="utf-8")
    assert [e.client_order_id for e in read_order_log(path)] == ["x"]
